//! The operator against a real API server and controller manager
//! (`shared/tools/kube-local`): the API server calls the webhook for Pods
//! that the controller manager creates from Deployments.
//!
//! Needs `KUBECONFIG` pointing at a kube-local cluster (`.ci/run` starts
//! one); skips without it outside CI, fails in CI.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;
use serde_json::json;
use tapwire_operator::annotations::{self, Request};
use tapwire_operator::cluster::WebhookConfigName;
use tapwire_operator::inject::{self, Identity, INIT_CONTAINER, PROXY_CONTAINER};
use tapwire_operator::{certs, Cluster, InjectorConfig, OperatorConfig, SidecarSecret};

const IMAGE: &str = "registry.example/tapwire@sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn deployment(name: &str, annotations: &[(&str, &str)], init: bool) -> Deployment {
    let ann: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (format!("sidecar.tapwire.dev/{k}"), (*v).to_owned()))
        .collect();
    let mut spec = json!({
        "containers": [{"name": "app", "image": "example/app:1", "ports": [{"containerPort": 8080}]}]
    });
    if init {
        spec["initContainers"] = json!([{"name": "migrate", "image": "example/migrate:1"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": ann},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}
        }
    }))
    .expect("deployment")
}

async fn pod_of(pods: &Api<Pod>, app: &str) -> Pod {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .expect("list pods");
        if let Some(p) = list.items.into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "no pod for {app} within 60s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn names(cs: &Option<Vec<k8s_openapi::api::core::v1::Container>>) -> Vec<String> {
    cs.iter().flatten().map(|c| c.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_injects_controller_created_pods_on_a_real_api_server() {
    if !tapwire_test_support::k8s::require_cluster() {
        return;
    }
    let client = Client::try_default().await.expect("kube client");
    let tag = format!(
        "{:x}",
        std::process::id() ^ (Instant::now().elapsed().as_nanos() as u32)
    );
    let ns_name = format!("tapwire-e2e-{tag}");
    let mwc_name = format!("tapwire-e2e-{tag}");

    let mut injector = InjectorConfig::new(IMAGE);
    injector.forwarder_url = Some("http://tapwire-forwarder.tapwire.svc:4150".into());
    injector.cluster = Some("kube-local".into());
    let cert = certs::generate(&["127.0.0.1".to_owned()]).expect("cert");
    let running = tapwire_operator::start(
        OperatorConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin: Some("127.0.0.1:0".parse().expect("addr")),
            namespace: "tapwire".into(),
            injector: injector.clone(),
            secret: SidecarSecret {
                api_key: Some("e2e-key".into()),
                ..Default::default()
            },
            cert,
            webhook_configs: vec![WebhookConfigName::Mutating(mwc_name.clone())],
            snapshots: None,
        },
        Some(Cluster::new(client.clone(), Duration::from_secs(2))),
    )
    .await
    .expect("operator starts");

    // What the chart renders, but addressed by URL: kube-local has no Services.
    let mwcs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let mwc: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": mwc_name},
        "webhooks": [{
            "name": "sidecar.tapwire.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "NoneOnDryRun",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "IfNeeded",
            "clientConfig": {"url": format!("https://{}/mutate", running.addr)},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"tapwire-e2e": tag}}
        }]
    }))
    .expect("mwc");
    mwcs.create(&PostParams::default(), &mwc)
        .await
        .expect("create mwc");

    // The operator fills in the caBundle itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = mwcs.get(&mwc_name).await.expect("get mwc");
        let bundle = got
            .webhooks
            .as_ref()
            .and_then(|w| w[0].client_config.ca_bundle.clone());
        if bundle.is_some_and(|b| !b.0.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "caBundle never published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The API server picks up webhook configurations through an informer.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let namespaces = Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": ns_name, "labels": {"tapwire-e2e": tag}}
    }))
    .expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns_name);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns_name);
    let transparent = [("inject", "true"), ("tls-out", "true")];
    let dual = [
        ("inject", "true"),
        ("proxy-type", "dual"),
        ("proxy-env", "true"),
        ("proxy-port", "8080"),
    ];
    let bad = [("inject", "true"), ("proxy-type", "sideways")];
    for d in [
        deployment("transparent", &transparent, true),
        deployment("dual", &dual, false),
        deployment("plain", &[], false),
        deployment("bad", &bad, false),
    ] {
        deployments
            .create(&PostParams::default(), &d)
            .await
            .expect("create deployment");
    }

    // Transparent: tapwire-init after the workload's own init container,
    // the proxy appended, exactly what the library computes for the same template.
    let pod = pod_of(&pods, "transparent").await;
    let spec = pod.spec.clone().expect("spec");
    assert_eq!(names(&spec.init_containers), ["migrate", INIT_CONTAINER]);
    assert_eq!(
        names(&Some(spec.containers.clone())),
        ["app", PROXY_CONTAINER]
    );
    let template = deployment("transparent", &transparent, true)
        .spec
        .expect("spec")
        .template;
    let mut expected = Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        status: None,
    };
    let ann = deployment("transparent", &transparent, true)
        .metadata
        .annotations
        .unwrap_or_default();
    let Request::Inject(sidecar) = annotations::parse(&ann) else {
        panic!("annotations should be valid");
    };
    inject::inject(
        &mut expected,
        &sidecar,
        &injector,
        &Identity {
            service: "transparent".into(),
        },
    )
    .expect("inject");
    let find = |p: &Pod, n: &str| {
        p.spec
            .as_ref()
            .expect("spec")
            .containers
            .iter()
            .chain(
                p.spec
                    .as_ref()
                    .expect("spec")
                    .init_containers
                    .iter()
                    .flatten(),
            )
            .find(|c| c.name == n)
            .cloned()
            .expect("container")
    };
    for n in [PROXY_CONTAINER, INIT_CONTAINER] {
        let (got, want) = (find(&pod, n), find(&expected, n));
        assert_eq!(got.args, want.args, "{n} args");
        assert_eq!(got.resources, want.resources, "{n} resources");
        assert_eq!(
            got.env
                .iter()
                .flatten()
                .map(|e| &e.name)
                .collect::<Vec<_>>(),
            want.env
                .iter()
                .flatten()
                .map(|e| &e.name)
                .collect::<Vec<_>>(),
            "{n} env"
        );
        assert_eq!(
            got.security_context
                .as_ref()
                .and_then(|s| s.capabilities.clone()),
            want.security_context
                .as_ref()
                .and_then(|s| s.capabilities.clone()),
            "{n} capabilities"
        );
    }
    assert_eq!(
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::STATUS)),
        expected
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::STATUS)),
    );

    // Dual with proxy-env: the app container gets the proxy variables.
    let pod = pod_of(&pods, "dual").await;
    let app = &pod.spec.as_ref().expect("spec").containers[0];
    let env: BTreeMap<_, _> = app
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env.get("HTTP_PROXY").map(String::as_str),
        Some("http://127.0.0.1:4140")
    );
    assert!(pod.spec.as_ref().expect("spec").init_containers.is_none());

    // Plain and bad pods are untouched; the bad one leaves a Warning Event.
    for app in ["plain", "bad"] {
        let pod = pod_of(&pods, app).await;
        assert_eq!(
            names(&Some(pod.spec.expect("spec").containers)),
            ["app"],
            "{app}"
        );
        assert!(!pod
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(annotations::STATUS));
    }
    let events = Api::<Event>::namespaced(client.clone(), &ns_name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = events.list(&ListParams::default()).await.expect("events");
        let found = list.items.iter().find(|e| {
            e.reason.as_deref() == Some("InvalidSidecarAnnotation")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("\"sideways\""))
        });
        if let Some(e) = found {
            assert_eq!(e.involved_object.kind.as_deref(), Some("Deployment"));
            assert_eq!(e.involved_object.name.as_deref(), Some("bad"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no InvalidSidecarAnnotation event"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The sidecar Secret was written into the namespace.
    let secret = Api::<Secret>::namespaced(client.clone(), &ns_name)
        .get("tapwire-sidecar")
        .await
        .expect("tapwire-sidecar secret");
    assert_eq!(
        secret
            .data
            .unwrap_or_default()
            .get("api-key")
            .map(|b| b.0.clone()),
        Some(b"e2e-key".to_vec())
    );
    assert!(
        running
            .metrics
            .admissions(tapwire_operator::Outcome::Injected)
            >= 2
    );

    // With the operator gone, pods are still created (failurePolicy Ignore), uninjected.
    running.shutdown(Duration::from_secs(2)).await;
    deployments
        .create(
            &PostParams::default(),
            &deployment("after-stop", &transparent, false),
        )
        .await
        .expect("create deployment");
    let pod = pod_of(&pods, "after-stop").await;
    assert_eq!(names(&Some(pod.spec.expect("spec").containers)), ["app"]);

    let _ = mwcs.delete(&mwc_name, &DeleteParams::default()).await;
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
}
