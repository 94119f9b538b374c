//! The OpenAPI document and the router agree: every documented (method, path) is served (never
//! the unknown-route 404 or a 405), and the document lists exactly the library's route table.

mod broker_common;

use broker_common::Broker;

#[test]
fn every_documented_route_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let (s, spec) = http.get("/openapi.json");
    assert_eq!(s, 200);
    let mut documented = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut table: Vec<(String, String)> =
        kappalog::broker::http::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
    for (method, path) in documented {
        let concrete = path
            .replace("{topic}", "t")
            .replace("{partition}", "0")
            .replace("{group}", "g")
            .replace("{instance}", "i")
            .replace("{name}", "v")
            .replace("{key}", "k");
        let (status, body) = http.call(&method, &concrete, Some("application/json"), Some(b"{}".to_vec()));
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert_ne!(body["error_code"], 40400, "{method} {path} is documented but not routed: {body}");
    }
}
