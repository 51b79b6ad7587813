//! The Kubernetes manifests (`k8s/`) and the `Dockerfile`, kept true to each
//! other and to the binary: both kustomizations (and production with the
//! managed-Redis component) render with `kubectl kustomize`, every object
//! validates offline with Python's kubernetes-validate (the schemas ship in
//! the package), and the pods run the binary the image holds, as its user,
//! on its ports, with flags `bidder serve` has.
//!
//! Without kubectl (kustomize v5) or kubernetes-validate these tests fail:
//! `scripts/test.sh` installs both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Kubernetes versions the manifests validate against: 1.27 is the first
/// with the StatefulSet PVC retention policy on by default; 1.32 is the
/// kubectl this project renders with.
const KUBERNETES_VERSIONS: &[&str] = &["1.27", "1.32"];

/// Seconds the pod gives the binary beyond `--drain-secs` to finish
/// in-flight requests and flush its journals before the SIGKILL.
const SHUTDOWN_MARGIN_SECS: u64 = 10;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

struct Variant {
    name: &'static str,
    text: String,
    objects: Vec<Value>,
    /// Whether the in-cluster Redis is part of it.
    redis: bool,
}

/// The three renderings, made once for all tests.
fn variants() -> &'static [Variant] {
    static VARIANTS: OnceLock<Vec<Variant>> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        let k8s = repo().join("k8s");
        // A kustomization may not name another by absolute path: the
        // temporary one reaches the repository through `..`s to `/`.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("k8s-managed-redis");
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let up = "../".repeat(dir.components().count() - 1);
        let rel = |p: &Path| format!("{up}{}", p.strip_prefix("/").unwrap().display());
        // The production overlay with the edit k8s/README.md gives for a
        // managed Redis, made as an operator makes it: its Redis component
        // swapped for managed-redis (a wrapper adding the component passed
        // while the documented edit failed to render: ops probe). Its
        // patch files are copied beside it, as kustomize reads them only
        // from under its root.
        let overlay = k8s.join("overlays/production");
        let text = std::fs::read_to_string(overlay.join("kustomization.yaml")).unwrap();
        let (redis, base) = ("components:\n  - redis\n", "  - ../../base\n");
        assert!(text.contains(redis) && text.contains(base), "{text}");
        let edited = text
            .replace(
                redis,
                &format!(
                    "components:\n  - {}\n",
                    rel(&k8s.join("components/managed-redis"))
                ),
            )
            .replace(base, &format!("  - {}\n", rel(&k8s.join("base"))));
        std::fs::write(dir.join("kustomization.yaml"), edited).unwrap();
        for f in std::fs::read_dir(&overlay).unwrap() {
            let f = f.unwrap();
            if f.file_type().unwrap().is_file() && f.file_name() != "kustomization.yaml" {
                std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
            }
        }
        [
            ("base", k8s.join("base"), true),
            ("production", k8s.join("overlays/production"), true),
            ("production + managed-redis", dir, false),
        ]
        .into_iter()
        .map(|(name, dir, redis)| {
            let text = kustomize(&dir);
            let objects: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{name}: kubectl kustomize wrote no YAML: {e}"));
            Variant {
                name,
                text,
                objects,
                redis,
            }
        })
        .collect()
    })
}

fn kustomize(dir: &Path) -> String {
    let out = match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "kubectl is not installed: the k8s tests render the manifests with `kubectl \
             kustomize` (kubectl 1.27 or later, kustomize v5). scripts/test.sh installs it"
        ),
        Err(e) => panic!("cannot run kubectl: {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn find<'a>(v: &'a Variant, kind: &str, name: &str) -> Option<&'a Value> {
    v.objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn get<'a>(v: &'a Variant, kind: &str, name: &str) -> &'a Value {
    find(v, kind, name).unwrap_or_else(|| panic!("{}: no {kind} {name}", v.name))
}

/// The bidder's StatefulSet and its one container.
fn bidder(v: &Variant) -> (&Value, &Value) {
    let set = get(v, "StatefulSet", "bidder");
    let containers = set["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{}", v.name);
    (set, &containers[0])
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// `--flag=value` arguments as a map (every flag is given in that form).
fn flags<'a>(variant: &str, args: &[&'a str]) -> BTreeMap<&'a str, &'a str> {
    let mut map = BTreeMap::new();
    for a in &args[1..] {
        let (flag, value) = a
            .split_once('=')
            .unwrap_or_else(|| panic!("{variant}: give {a:?} as --flag=value"));
        assert!(flag.starts_with("--"), "{variant}: {a:?}");
        assert!(map.insert(flag, value).is_none(), "{variant}: {flag} twice");
    }
    map
}

/// The value of a container argument with its `$(VAR)` references expanded
/// as the kubelet does, from the container's `env` values and ConfigMap
/// keys; a reference to anything else fails.
fn expand(v: &Variant, container: &Value, value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(')').unwrap() + at;
        let var = &rest[at + 2..end];
        let env = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == var)
            .unwrap_or_else(|| panic!("{}: $({var}) is not in the container's env", v.name));
        let resolved = if let Some(lit) = env["value"].as_str() {
            lit.to_owned()
        } else {
            let r = &env["valueFrom"]["configMapKeyRef"];
            let map = get(v, "ConfigMap", r["name"].as_str().unwrap());
            map["data"][r["key"].as_str().unwrap()]
                .as_str()
                .unwrap_or_else(|| {
                    panic!("{}: {var}: no key {} in {}", v.name, r["key"], r["name"])
                })
                .to_owned()
        };
        out.push_str(&resolved);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// What the Dockerfile's final stage says: the entrypoint's binary, the
/// user and group ids, the exposed ports, and where the binary is copied.
struct Image {
    entrypoint: String,
    copied_to: String,
    uid: u64,
    gid: u64,
    exposed: BTreeSet<u64>,
}

fn image() -> Image {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    let stage = &lines[last..];
    let instruction = |name: &str| -> Vec<&str> {
        stage
            .iter()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .collect()
    };
    let entry: Vec<String> = serde_json::from_str(instruction("ENTRYPOINT")[0]).unwrap();
    let copy = instruction("COPY")
        .into_iter()
        .find(|c| c.contains("--from=build"))
        .expect("the binary copied from the build stage");
    let (uid, gid) = instruction("USER")[0]
        .split_once(':')
        .expect("USER uid:gid");
    Image {
        entrypoint: entry[0].clone(),
        copied_to: copy.split_whitespace().last().unwrap().to_owned(),
        uid: uid.parse().expect("a numeric uid: runAsNonRoot needs one"),
        gid: gid.parse().unwrap(),
        exposed: instruction("EXPOSE")
            .iter()
            .flat_map(|l| l.split_whitespace())
            .map(|p| p.parse().unwrap())
            .collect(),
    }
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn every_object_validates_offline_against_the_kubernetes_schemas() {
    for v in variants() {
        let file = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("k8s-{}.yaml", v.name.replace([' ', '+'], "")));
        std::fs::write(&file, &v.text).unwrap();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "kubernetes_validate", "--strict"]);
        for k in KUBERNETES_VERSIONS {
            cmd.args(["-k", k]);
        }
        let out = match cmd.arg(&file).output() {
            Ok(out) => out,
            Err(e) => panic!(
                "cannot run python3 ({e}): the k8s tests need it with kubernetes-validate \
                 (scripts/test.sh installs it)"
            ),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: kubernetes-validate refused it:\n{stdout}{}\n(the k8s tests need \
             `python3 -m pip install kubernetes-validate`; scripts/test.sh installs it)",
            v.name,
            String::from_utf8_lossy(&out.stderr)
        );
        // The one custom resource has no schema in the package: it warns and
        // is checked below (the_service_monitor_scrapes_the_admin_port).
        let monitors = v
            .objects
            .iter()
            .filter(|o| o["kind"] == "ServiceMonitor")
            .count();
        for line in stdout.lines() {
            assert!(
                line.starts_with("INFO ")
                    || (line.starts_with("WARN ") && line.contains("kind ServiceMonitor")),
                "{}: {line}",
                v.name
            );
        }
        let passed = stdout.lines().filter(|l| l.contains(" passed ")).count();
        assert_eq!(
            passed,
            (v.objects.len() - monitors) * KUBERNETES_VERSIONS.len(),
            "{}: every object but the ServiceMonitor validated:\n{stdout}",
            v.name
        );
    }
}

#[test]
fn the_pods_run_the_image_as_its_user_on_its_ports() {
    let image = image();
    assert_eq!(
        image.entrypoint, image.copied_to,
        "the entrypoint is the binary copied from the build stage"
    );
    for v in variants() {
        let (set, c) = bidder(v);
        let pod = &set["spec"]["template"]["spec"];
        assert_eq!(
            strings(&c["command"]),
            [image.entrypoint.as_str()],
            "{}",
            v.name
        );
        let sc = &pod["securityContext"];
        assert_eq!(
            sc["runAsUser"], image.uid,
            "{}: the Dockerfile's USER",
            v.name
        );
        assert_eq!(sc["runAsGroup"], image.gid, "{}", v.name);
        assert_eq!(sc["runAsNonRoot"], true, "{}", v.name);
        let csc = &c["securityContext"];
        assert_eq!(csc["readOnlyRootFilesystem"], true, "{}", v.name);
        assert_eq!(csc["allowPrivilegeEscalation"], false, "{}", v.name);
        assert_eq!(strings(&csc["capabilities"]["drop"]), ["ALL"], "{}", v.name);
        for r in ["requests", "limits"] {
            for what in ["cpu", "memory"] {
                assert!(
                    c["resources"][r][what].is_string(),
                    "{}: {r}.{what}",
                    v.name
                );
            }
        }

        let ports: BTreeMap<&str, u64> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ports.values().copied().collect::<BTreeSet<_>>(),
            image.exposed,
            "{}: container ports are the EXPOSEd ones",
            v.name
        );
        let args = strings(&c["args"]);
        assert_eq!(args[0], "serve", "{}", v.name);
        let flags = flags(v.name, &args);
        assert_eq!(port_of(flags["--listen"]), ports["bid"], "{}", v.name);
        assert_eq!(
            port_of(flags["--admin-listen"]),
            ports["admin"],
            "{}",
            v.name
        );

        // Probes on the admin port, by name or number.
        let admin_port = |probe: &Value| {
            let port = &probe["httpGet"]["port"];
            port == "admin" || port.as_u64() == Some(ports["admin"])
        };
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            assert_eq!(c[probe]["httpGet"]["path"], path, "{}: {probe}", v.name);
            assert!(
                admin_port(&c[probe]),
                "{}: {probe} on the admin port",
                v.name
            );
        }

        let drain: u64 = flags["--drain-secs"].parse().unwrap();
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace >= drain + SHUTDOWN_MARGIN_SECS,
            "{}: terminationGracePeriodSeconds {grace} leaves under {SHUTDOWN_MARGIN_SECS} s \
             after --drain-secs {drain}",
            v.name
        );
        assert!(pod["containers"][0]["lifecycle"]["preStop"].is_null());
    }
}

#[test]
fn every_argument_is_a_serve_flag_and_names_what_the_pod_mounts() {
    let help = Command::new(env!("CARGO_BIN_EXE_bidder"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let known: BTreeSet<&str> = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split_whitespace().take(2))
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(known.contains("--drain-secs"), "{help}");
    for v in variants() {
        let (set, c) = bidder(v);
        let args = strings(&c["args"]);
        let flags = flags(v.name, &args);
        for flag in flags.keys() {
            assert!(known.contains(flag), "{}: serve has no {flag}", v.name);
        }

        let mounts: BTreeMap<&str, &Value> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["mountPath"].as_str().unwrap(), m))
            .collect();
        let volume = |mount: &str| -> &Value {
            let m = mounts
                .get(mount)
                .unwrap_or_else(|| panic!("{}: nothing mounted at {mount}", v.name));
            // A subPath mount never sees a ConfigMap or Secret update.
            assert!(m["subPath"].is_null(), "{}: {mount} by subPath", v.name);
            set["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|vol| vol["name"] == m["name"])
                .unwrap_or_else(|| panic!("{}: no volume {}", v.name, m["name"]))
        };
        assert_eq!(
            volume(flags["--config"])["configMap"]["name"],
            "bidder-config",
            "{}",
            v.name
        );
        for flag in ["--notice-secret-file", "--admin-token-file"] {
            let path = Path::new(flags[flag]);
            let vol = volume(path.parent().unwrap().to_str().unwrap());
            assert_eq!(vol["secret"]["secretName"], "bidder-secrets", "{}", v.name);
            let items = vol["secret"]["items"].as_array().unwrap();
            let file = path.file_name().unwrap().to_str().unwrap();
            assert!(
                items.iter().any(|i| i["path"] == file),
                "{}: {flag} {} is not in the secret volume",
                v.name,
                path.display()
            );
        }
        let journal = flags["--journal"];
        let claims: Vec<&str> = set["spec"]["volumeClaimTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            mounts[journal]["name"].as_str(),
            Some(claims[0]),
            "{}: --journal on the replica's own claim",
            v.name
        );

        // The Redis state: its address, with the credentials beside it.
        let public_url = expand(v, c, flags["--public-url"]);
        assert!(
            public_url.starts_with("https://"),
            "{}: {public_url}",
            v.name
        );
        let state = expand(v, c, flags["--state"]);
        let (scheme, rest) = state.split_once("://").unwrap();
        assert!(
            !rest.split('/').next().unwrap().contains('@'),
            "{}: credentials in {state}: they come from BIDDER_REDIS_PASSWORD",
            v.name
        );
        if v.redis {
            assert_eq!(scheme, "redis", "{}", v.name);
            let service = get(v, "Service", "bidder-redis");
            let host_port = rest.split('/').next().unwrap();
            let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
            assert_eq!(host_port, format!("bidder-redis:{port}"), "{}", v.name);
            get(v, "StatefulSet", "bidder-redis");
        } else {
            assert_eq!(scheme, "rediss", "{}: a managed Redis over TLS", v.name);
            assert!(
                find(v, "StatefulSet", "bidder-redis").is_none(),
                "{}",
                v.name
            );
            assert!(find(v, "Service", "bidder-redis").is_none(), "{}", v.name);
        }
        let password = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "BIDDER_REDIS_PASSWORD")
            .unwrap_or_else(|| panic!("{}: no BIDDER_REDIS_PASSWORD", v.name));
        assert_eq!(
            password["valueFrom"]["secretKeyRef"]["name"], "bidder-secrets",
            "{}",
            v.name
        );
    }
}

#[test]
fn the_readme_creates_every_secret_key_the_pods_read() {
    let readme = std::fs::read_to_string(repo().join("k8s/README.md")).unwrap();
    for v in variants() {
        let mut keys = BTreeSet::new();
        for o in &v.objects {
            let Some(pod) = o["spec"]["template"]["spec"].as_object() else {
                continue;
            };
            for vol in pod["volumes"].as_array().into_iter().flatten() {
                for item in vol["secret"]["items"].as_array().into_iter().flatten() {
                    keys.insert((str_of(&vol["secret"]["secretName"]), str_of(&item["key"])));
                }
            }
            for c in pod["containers"].as_array().unwrap() {
                for e in c["env"].as_array().into_iter().flatten() {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    if r.is_object() && r["optional"] != true {
                        keys.insert((str_of(&r["name"]), str_of(&r["key"])));
                    }
                }
            }
        }
        for (secret, key) in keys {
            assert_eq!(secret, "bidder-secrets", "{}", v.name);
            assert!(
                readme.contains(&format!("--from-file={key}=")),
                "k8s/README.md does not create {secret}'s {key}"
            );
        }
    }
}

#[test]
fn the_service_monitor_scrapes_the_admin_port() {
    for v in variants() {
        let (set, c) = bidder(v);
        let pod_labels = &set["spec"]["template"]["metadata"]["labels"];
        let matches = |selector: &Value, labels: &Value| {
            selector
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, want)| &labels[k] == want)
        };
        let service = get(v, "Service", "bidder");
        assert!(
            matches(&service["spec"]["selector"], pod_labels),
            "{}",
            v.name
        );
        let monitor = get(v, "ServiceMonitor", "bidder");
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        let selector = &monitor["spec"]["selector"]["matchLabels"];
        let scraped: Vec<&str> = v
            .objects
            .iter()
            .filter(|o| o["kind"] == "Service" && matches(selector, &o["metadata"]["labels"]))
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(scraped, ["bidder"], "{}: each pod scraped once", v.name);
        let admin_target = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "admin")
            .unwrap();
        let admin = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["targetPort"] == admin_target["name"]
                    || p["targetPort"] == admin_target["containerPort"]
            })
            .unwrap_or_else(|| panic!("{}: the Service has no admin port", v.name));
        assert_eq!(admin["name"], "admin", "{}", v.name);
        let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), 1, "{}", v.name);
        assert_eq!(endpoints[0]["port"], admin["name"], "{}", v.name);
        assert_eq!(endpoints[0]["path"], "/metrics", "{}", v.name);
        let annotations = &set["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(
            annotations["prometheus.io/port"],
            admin_target["containerPort"].to_string(),
            "{}",
            v.name
        );

        // The autoscaler and the disruption budget act on these pods.
        let hpa = get(v, "HorizontalPodAutoscaler", "bidder");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "StatefulSet");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "bidder");
        assert!(
            set["spec"]["replicas"].is_null(),
            "{}: the autoscaler owns the replica count",
            v.name
        );
        let pdb = get(v, "PodDisruptionBudget", "bidder");
        assert!(
            matches(&pdb["spec"]["selector"]["matchLabels"], pod_labels),
            "{}",
            v.name
        );
    }
}

#[test]
fn the_config_map_is_the_example_config_and_validates() {
    // The generator's files: the examples, all of them, unchanged.
    let kustomization =
        std::fs::read_to_string(repo().join("k8s/base/kustomization.yaml")).unwrap();
    let kustomization: Value = serde_saphyr::from_str(&kustomization).unwrap();
    let generator = kustomization["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "bidder-config")
        .unwrap();
    let listed: BTreeSet<String> = strings(&generator["files"])
        .into_iter()
        .map(|f| {
            let path = repo().join("k8s/base").join(f);
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let example = repo().join("examples/config").join(&name);
            assert_eq!(
                std::fs::read(&path).unwrap_or_else(|e| panic!("k8s/base/{f}: {e}")),
                std::fs::read(&example).unwrap_or_else(|e| panic!("{}: {e}", example.display())),
                "k8s/base/{f} differs from examples/config/{name}: \
                 cp examples/config/*.yaml k8s/base/config/"
            );
            name
        })
        .collect();
    let examples: BTreeSet<String> = std::fs::read_dir(repo().join("examples/config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(listed, examples, "every example file is in the ConfigMap");

    for v in variants() {
        let map = get(v, "ConfigMap", "bidder-config");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("k8s-config-{}", v.name.replace([' ', '+'], "")));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in map["data"].as_object().unwrap() {
            std::fs::write(dir.join(file), text.as_str().unwrap()).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_bidder"))
            .args(["validate", "--config"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: the rendered config is refused:\n{}{}",
            v.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);

        if v.redis {
            let conf = get(v, "StatefulSet", "bidder-redis");
            let volumes = conf["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap();
            let name = volumes
                .iter()
                .find_map(|vol| vol["configMap"]["name"].as_str())
                .unwrap();
            let text = get(v, "ConfigMap", name)["data"]["redis.conf"]
                .as_str()
                .unwrap()
                .to_owned();
            let set: BTreeSet<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .collect();
            for line in [
                "appendonly yes",
                "appendfsync always",
                "maxmemory-policy noeviction",
            ] {
                assert!(set.contains(line), "{}: redis.conf lacks {line:?}", v.name);
            }
        }
    }
}

/// Each table that grows with traffic, or with what anyone can send, at
/// the bytes an entry takes by `bidder serve --help` (the windows' 90 and
/// the 72 more while they are saved; list members rounded up).
const MEMORY_BOUNDS: &[(&str, u64)] = &[
    ("--max-bids-in-flight", 170),
    ("--max-frequency-windows", 162),
    ("--max-attribution-entries", 300),
    ("--max-audience-users", 115),
    ("--max-audience-events", 8),
    ("--max-tracked-events", 18),
    ("--max-list-members", 10),
    ("--max-body-memory", 1),
];

/// What the process takes beside those tables (code, config, runtime,
/// buffers), in bytes.
const PROCESS_BYTES: u64 = 150_000_000;

fn bytes_of_quantity(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = n.parse().unwrap();
    n * match unit {
        "Gi" => 1 << 30,
        "Mi" => 1 << 20,
        "" => 1,
        other => panic!("unit {other} of {q}"),
    }
}

/// A pod whose memory bounds add up past its limit is killed for its
/// memory under the traffic or the flood the bounds were meant to absorb
/// (operators probe: at their defaults they came to more than twice the
/// base's 1Gi). Every bound is set or has a default, and together, with
/// the rest of the process, they fit the container's limit.
#[test]
fn the_memory_bounds_fit_the_pods_limit() {
    let help = Command::new(env!("CARGO_BIN_EXE_bidder"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    // A flag's default and environment variable, from its help.
    let of = |flag: &str| -> (Option<u64>, Option<String>) {
        let start = help
            .find(&format!("      {flag} "))
            .unwrap_or_else(|| panic!("{flag} in serve --help"));
        let block = &help[start..];
        let block = &block[..block[8..].find("\n      --").map_or(block.len(), |e| e + 8)];
        let default = block.split("[default: ").nth(1).map(|d| {
            d[..d.find(']').unwrap()]
                .parse()
                .unwrap_or_else(|_| panic!("{flag}: default {d}"))
        });
        let env = block
            .split("[env: ")
            .nth(1)
            .map(|e| e[..e.find('=').unwrap()].to_owned());
        (default, env)
    };
    for v in variants() {
        let (_, c) = bidder(v);
        let args = strings(&c["args"]);
        let flags = flags(v.name, &args);
        let env_value = |name: &str| {
            c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == name)
                .and_then(|e| e["value"].as_str())
        };
        let mut total = PROCESS_BYTES;
        let mut lines = Vec::new();
        for &(flag, each) in MEMORY_BOUNDS {
            let (default, env) = of(flag);
            let set = flags
                .get(flag)
                .copied()
                .or_else(|| env.as_deref().and_then(env_value));
            let n: u64 = match set {
                Some(n) => n
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: {flag} {n}", v.name)),
                None => default.unwrap_or_else(|| panic!("{}: {flag} is unbounded", v.name)),
            };
            total += n * each;
            lines.push(format!("{flag} {n} x {each} B"));
        }
        let limit = bytes_of_quantity(c["resources"]["limits"]["memory"].as_str().unwrap());
        assert!(
            total <= limit,
            "{}: {total} bytes of bounds and process past the {limit}-byte limit:\n{}",
            v.name,
            lines.join("\n")
        );
    }
}
