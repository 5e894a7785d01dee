// One request with java.net.http.HttpClient, configured only by system
// properties (https.proxyHost, http.proxyHost, javax.net.ssl.trustStore,
// ...) as a JVM app would be. Run as a single-file program:
//   java HttpCall.java METHOD URL [BODY]
// A BODY is sent as application/json. Prints "status=<code>",
// "version=<HTTP_1_1|HTTP_2>", one "header=<name>: <value>" line per
// response header, an empty line, then the body's bytes exactly as received.

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;

public class HttpCall {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(args[1]))
                .timeout(Duration.ofSeconds(20))
                .header("X-Client", "jdk-httpclient");
        if (args.length > 2) {
            req.header("Content-Type", "application/json");
            req.method(args[0], HttpRequest.BodyPublishers.ofString(args[2], StandardCharsets.UTF_8));
        } else {
            req.method(args[0], HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<byte[]> resp = client.send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        out.print("status=" + resp.statusCode() + "\n");
        out.print("version=" + resp.version() + "\n");
        for (Map.Entry<String, List<String>> h : resp.headers().map().entrySet()) {
            for (String v : h.getValue()) {
                out.print("header=" + h.getKey() + ": " + v + "\n");
            }
        }
        out.print("\n");
        out.write(resp.body());
        out.flush();
    }
}
