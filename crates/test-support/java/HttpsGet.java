// One GET with java.net.http.HttpClient, configured only by system
// properties (https.proxyHost, javax.net.ssl.trustStore, ...) as a JVM app
// would be. Run as a single-file program: java HttpsGet.java URL
// Prints "status=<code>", "version=<HTTP_1_1|HTTP_2>", then the body.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class HttpsGet {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpRequest req = HttpRequest.newBuilder(URI.create(args[0]))
                .timeout(Duration.ofSeconds(20))
                .header("X-Client", "jdk-httpclient")
                .GET()
                .build();
        HttpResponse<String> resp = client.send(req, HttpResponse.BodyHandlers.ofString());
        System.out.println("status=" + resp.statusCode());
        System.out.println("version=" + resp.version());
        System.out.print(resp.body());
        System.out.flush();
    }
}
