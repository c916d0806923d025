#!/usr/bin/env python3
"""Offline checks of the todo-dapr Helm chart: render, lint, schema validation, template tests.

Run by `cargo xtask test` (xtask/src/helm_check.rs) inside a venv with the pins of
`requirements.txt`; runnable by hand the same way:

    ~/.cache/todo-dapr/helm-venv/bin/python helm/tests/render_check.py

What it does, each step able to fail:
  1. drift      the chart's copies `files/subscriptions/*.yaml` and `dashboards/*.json` are
                identical to `dapr/subscriptions/*.yaml` and `grafana/dashboards/*.json`
                (`--sync` rewrites the copies; it needs only the standard library);
  2. values     every value in values.yaml is documented (`# --`), every key of the override
                files exists in values.yaml, no values file holds a secret value, and
                values.schema.json is a valid draft-07 schema with a description everywhere;
  3. lint       `helm lint --strict` (Helm v4 SDK) for the default, minikube, oke and each
                `ci/*-values.yaml` value set (oke with `OKE_FILLED` over its placeholders);
  4. render     the same value sets rendered offline (Helm validates them against
                values.schema.json first, as install, upgrade and template do);
  5. k8s        rendered core objects through `kubernetes-validate --strict -k 1.30.0`;
  6. dapr       rendered Dapr objects (and the local `dapr/` manifests) through
                `check-jsonschema` with the schemas in `schemas/`;
  7. tests      unit tests of the templates (Dapr annotations, sidecar budget, hardening,
                probes, replicas, selectors, secrets only by reference, subscriptions equal to
                the generated ones, resiliency equal to the local one, dashboards, ...), plus
                negative tests proving the validators and the chart's guards do reject bad input.

Exit status 0 when everything passed; the last line is `N passed, M failed`.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "todo-dapr"
TESTS = REPO / "helm" / "tests"
SCHEMAS = TESTS / "schemas"
KUBE_VERSION = "1.30.0"
RELEASE = "todo"
NAMESPACE = "todo"

# Mirrors `todo-dapr.isSecretName` in templates/_helpers.tpl (a negative test holds the two
# together on SECRET_NAME_CASES).
SECRET_WORDS = {
    "secret", "secrets", "key", "keys", "apikey", "pass", "passwd", "password", "passphrase",
    "pwd", "token", "credential", "credentials", "dsn",
}
LOCATOR_WORDS = {
    "endpoint", "url", "uri", "host", "type", "mechanism", "prefix", "path", "file", "store",
    "name", "ttl",
}
SECRET_EXACT = {"DATABASE_URL", "SMTP_USERNAME"}
SECRET_STORE_NAMES = {"DATABASE_URL_SECRET", "JWT_SECRET_SECRET", "SMTP_CREDENTIALS_SECRET"}
# name -> whether it holds a secret.
SECRET_NAME_CASES = {
    "oidcClientSecret": True,
    "awsSecretKey": True,
    "awsAccessKey": True,
    "awsSessionToken": True,
    "schemaRegistryAPISecret": True,
    "schemaRegistryAPIKey": True,
    "saslPassword": True,
    "clientKey": True,
    "connectionString": True,
    "DB_PASS": True,
    "JWT_SIGNING_KEY": True,
    "JWT_SECRET": True,
    "OIDC_CLIENT_SECRET": True,
    "DATABASE_URL": True,
    "SMTP_USERNAME": True,
    "REDIS_DSN": True,
    "oidcTokenEndpoint": False,
    "keyPrefix": False,
    "authType": False,
    "saslMechanism": False,
    "saslUsername": False,
    "SECRET_STORE": False,
    "DATABASE_URL_SECRET": False,
    "JWT_SECRET_SECRET": False,
    "SMTP_CREDENTIALS_SECRET": False,
    "JWT_JWKS_URL": False,
    "maxMessageBytes": False,
    "passthrough": False,
    "RUST_LOG": False,
}
# Text that is a secret wherever it appears.
SECRET_TEXT = [
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@\"']+:[^/\s@\"']+@"), "URL with a password"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "PEM private key"),
    (re.compile(r"(?i)\bpassword\s*=\s*[^\s\"',;]+"), "password= assignment"),
]
DAPR_SECRET_FIELDS_ALLOWED_LITERAL = {"authType", "saslMechanism"}

SERVICES = ["backend", "notification", "email-delivery", "recurring-task"]

# What an operator fills in for the `<placeholders>` of values-oke.yaml, merged over that file
# the way a second `-f` file would be (the chart refuses to render while one is left; a negative
# test renders the file as shipped). OCIR is addressed by region key, the other endpoints by
# region identifier.
OKE_FILLED: dict[str, Any] = {
    "image": {"registry": "fra.ocir.io/axk4example"},
    "pubsub": {
        "kafka": {"brokers": ["cell-1.streaming.eu-frankfurt-1.oci.oraclecloud.com:9092"]}
    },
    "services": {
        "backend": {"service": {"loadBalancerSourceRanges": ["203.0.113.0/24"]}},
        "email-delivery": {
            "env": {
                "SMTP_HOST": "smtp.email.eu-frankfurt-1.oci.oraclecloud.com",
                "SMTP_FROM": "Todo Reminders <reminders@todo.example.com>",
            }
        }
    },
}


def name_words(name: str) -> list[str]:
    """`schemaRegistryAPISecret` -> ["schema", "registry", "api", "secret"]."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return [w for w in re.split(r"[^a-z0-9]+", s.lower()) if w]


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    words = name_words(name)
    if upper in SECRET_EXACT:
        return True
    if upper in SECRET_STORE_NAMES or not words or words[-1] in LOCATOR_WORDS:
        return False
    if "connection_string" in "_".join(words):
        return True
    return any(w in SECRET_WORDS for w in words)


# ----------------------------------------------------------------------------------------------
# Output


class Report:
    """Collects test results; prints one line per failure and a closing count."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(f"{name}: {detail}" if detail else name)
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def run(self, name: str, fn: Callable[[], None]) -> None:
        """Runs `fn`; an AssertionError (or any error) is that test's failure."""
        try:
            fn()
        except AssertionError as e:
            self.check(name, False, str(e) or "assertion failed")
        except Exception as e:  # a crashing test is a failing test, with its cause
            self.check(name, False, f"{type(e).__name__}: {e}")
        else:
            self.check(name, True)


def step(msg: str) -> None:
    print(f"-- {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Drift between the chart's copies and their sources


def mirror_pairs() -> list[tuple[Path, Path, str]]:
    """(source dir, chart copy dir, glob) for every mirrored set of files."""
    return [
        (REPO / "dapr" / "subscriptions", CHART / "files" / "subscriptions", "*.yaml"),
        (REPO / "grafana" / "dashboards", CHART / "dashboards", "*.json"),
        (REPO / "grafana" / "rules", CHART / "files" / "rules", "*.rules.yaml"),
    ]


def drift() -> list[str]:
    problems = []
    for src, dst, pattern in mirror_pairs():
        want = {p.name: p.read_bytes() for p in sorted(src.glob(pattern))} if src.is_dir() else {}
        have = {p.name: p.read_bytes() for p in sorted(dst.glob(pattern))} if dst.is_dir() else {}
        for name in sorted(set(want) | set(have)):
            rel_src = (src / name).relative_to(REPO)
            rel_dst = (dst / name).relative_to(REPO)
            if name not in have:
                problems.append(f"{rel_dst} is missing (copy of {rel_src})")
            elif name not in want:
                problems.append(f"{rel_dst} has no source {rel_src}")
            elif want[name] != have[name]:
                problems.append(f"{rel_dst} differs from {rel_src}")
    return problems


def sync() -> None:
    for src, dst, pattern in mirror_pairs():
        dst.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in src.glob(pattern)} if src.is_dir() else set()
        for stale in dst.glob(pattern):
            if stale.name not in wanted:
                stale.unlink()
                print(f"removed {stale.relative_to(REPO)}")
        for name in sorted(wanted):
            if not (dst / name).exists() or (dst / name).read_bytes() != (src / name).read_bytes():
                shutil.copyfile(src / name, dst / name)
                print(
                    f"copied {(src / name).relative_to(REPO)} -> {(dst / name).relative_to(REPO)}"
                )


# ----------------------------------------------------------------------------------------------
# Values files


def value_sets(yaml: Any) -> list[tuple[str, dict[str, Any] | None, Path | None]]:
    """(name, override values, file) for every value set the chart is tested with."""
    sets: list[tuple[str, dict[str, Any] | None, Path | None]] = [("default", None, None)]
    for name in ("minikube", "oke", "local"):
        path = CHART / f"values-{name}.yaml"
        values = yaml.safe_load(path.read_text()) or {}
        if name == "oke":
            _merge(values, copy.deepcopy(OKE_FILLED))
        sets.append((name, values, path))
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        sets.append(
            (
                f"ci/{path.stem.removesuffix('-values')}",
                yaml.safe_load(path.read_text()) or {},
                path,
            )
        )
    return sets


def undocumented_values(text: str) -> list[str]:
    """Keys of values.yaml with neither their own `# --` comment nor a documented ancestor."""
    missing = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented)
    comment_block: list[str] = []
    key_re = re.compile(r"^(\s*)([A-Za-z0-9_.\-/\"]+):(\s|$)")
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment_block.append(stripped)
            continue
        if not stripped:
            comment_block = []
            continue
        m = key_re.match(line)
        if not m or stripped.startswith("- "):
            comment_block = []
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        own = any(c.startswith("# --") for c in comment_block)
        documented = own or any(d for _, _, d in stack)
        path = ".".join([k for _, k, _ in stack] + [m.group(2)])
        # A leaf is a key whose value is on the same line.
        rest = line[m.end() :].strip()
        if rest and not rest.startswith("#") and not documented:
            missing.append(path)
        if not rest:
            stack.append((indent, m.group(2), documented))
            # A parent without docs is fine as long as its leaves are documented.
        comment_block = []
    return missing


# Maps whose keys are free-form in values.yaml: override files may add any key below them.
FREEFORM = {
    "env",
    "resources",
    "annotations",
    "labels",
    "extraAnnotations",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "commonLabels",
    "otel",
    "affinity",
    "spec",
    "policies",
    "targets",
    "podSecurityContext",
    "containerSecurityContext",
}
# A service's block that overrides a chart-wide one of the same name.
PER_SERVICE_OVERRIDES = {"dapr", "probes"}


def unknown_keys(override: Any, defaults: Any, path: str = "") -> list[str]:
    out = []
    if not isinstance(override, dict):
        return out
    for key, value in override.items():
        here = f"{path}.{key}" if path else str(key)
        if not isinstance(defaults, dict) or key not in defaults:
            out.append(here)
            continue
        if key in FREEFORM:
            continue
        if key in PER_SERVICE_OVERRIDES and path.startswith("services."):
            # Merged over the chart-wide block of the same name: check it against that.
            out += unknown_keys(value, ROOT_DEFAULTS[key], here)
            continue
        if isinstance(value, dict) and isinstance(defaults[key], dict) and defaults[key]:
            out += unknown_keys(value, defaults[key], here)
    return out


ROOT_DEFAULTS: dict[str, Any] = {}


def secret_values_in(data: Any, path: str = "") -> list[str]:
    """Secret-looking keys with literal values, and secret-looking text, in a values tree."""
    out = []
    if isinstance(data, dict):
        if "name" in data and "value" in data and is_secret_name(str(data["name"])):
            out.append(f"{path}: {data['name']} has a literal value")
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            key_s = str(key)
            names_a_secret = key_s.endswith(("Key", "SecretName", "_SECRET")) or key_s in {
                "secretName",
                "key",
                "name",
                "SECRET_STORE",
            }
            if (
                isinstance(value, (str, int, float))
                and not isinstance(value, bool)
                and str(value)
                and is_secret_name(key_s)
                and not names_a_secret
            ):
                out.append(f"{here} holds a literal secret")
            out += secret_values_in(value, here)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            out += secret_values_in(item, f"{path}[{i}]")
    elif isinstance(data, str):
        for pattern, what in SECRET_TEXT:
            if pattern.search(data):
                out.append(f"{path}: {what}")
    return out


# ----------------------------------------------------------------------------------------------
# Rendering


class Rendered:
    """One value set rendered: the documents by kind and name."""

    def __init__(self, name: str, manifests: dict[str, str], yaml: Any) -> None:
        self.name = name
        self.text = "\n---\n".join(manifests[k] for k in sorted(manifests))
        self.duplicates = [
            f"{template}: {key}"
            for template in sorted(manifests)
            if not template.endswith("NOTES.txt")
            for key in duplicate_keys(yaml, manifests[template])
        ]
        self.docs: list[dict[str, Any]] = []
        for template in sorted(manifests):
            if template.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(manifests[template]):
                if doc:
                    doc["__template__"] = template
                    self.docs.append(doc)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]


def duplicate_keys(yaml: Any, text: str) -> list[str]:
    """Keys that appear twice in one mapping: YAML parsers keep the last silently, Kubernetes'
    strict decoding rejects them (a duplicated pod annotation, for one)."""
    found: list[str] = []

    class Strict(yaml.SafeLoader):  # type: ignore[misc, name-defined]
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                found.append(f"{key} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    for _ in yaml.load_all(text, Loader=Strict):
        pass
    return found


def clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("__")}


def render(helm: Any, chart_dir: Path, values: dict[str, Any] | None) -> dict[str, str]:
    """Renders like `helm template`: the SDK coalesces the values with the chart's defaults and
    validates them against values.schema.json first (a HelmValuesError naming each offending
    path), then renders (a HelmRenderError for a template's `fail`)."""
    with helm.Chart.load(str(chart_dir)) as chart:
        return chart.render(
            values=copy.deepcopy(values) if values else None,
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=True,
        )


def merged_values(helm: Any, values: dict[str, Any] | None) -> dict[str, Any]:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.merge_values(copy.deepcopy(values) if values else {})


# ----------------------------------------------------------------------------------------------
# External validators


def venv_tool(name: str) -> str:
    tool = Path(sys.executable).parent / name
    return str(tool) if tool.exists() else name


def kubernetes_validate(files: list[Path]) -> tuple[bool, str]:
    proc = subprocess.run(
        [
            venv_tool("kubernetes-validate"),
            "--strict",
            "-k",
            KUBE_VERSION,
            "--quiet",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def check_jsonschema(schema: Path, files: list[Path]) -> tuple[bool, str]:
    proc = subprocess.run(
        [venv_tool("check-jsonschema"), "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def check_metaschema(schema: Path) -> tuple[bool, str]:
    """Whether `schema` is a valid JSON Schema of the draft it names in `$schema`."""
    proc = subprocess.run(
        [venv_tool("check-jsonschema"), "--check-metaschema", str(schema)],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def undescribed_properties(schema: Any, path: str = "") -> list[str]:
    """Properties anywhere in a JSON Schema (definitions included) without a `description`."""
    out = []
    if isinstance(schema, dict):
        for key, sub in schema.items():
            here = f"{path}/{key}"
            if key == "properties" and isinstance(sub, dict):
                for name, prop in sub.items():
                    if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
                        out.append(f"{here}/{name}")
            out += undescribed_properties(sub, here)
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            out += undescribed_properties(sub, f"{path}/{i}")
    return out


DAPR_KIND_SCHEMA = {
    "Component": "dapr-component.schema.json",
    "Configuration": "dapr-configuration.schema.json",
    "Resiliency": "dapr-resiliency.schema.json",
    "Subscription": "dapr-subscription.schema.json",
}


# ----------------------------------------------------------------------------------------------
# Template tests


def deployments(r: Rendered) -> dict[str, dict[str, Any]]:
    out = {}
    for d in r.kind("Deployment"):
        out[d["metadata"]["labels"]["app.kubernetes.io/component"]] = d
    return out


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def pod_annotations(d: dict[str, Any]) -> dict[str, str]:
    return d["spec"]["template"]["metadata"].get("annotations", {})


def container(d: dict[str, Any]) -> dict[str, Any]:
    containers = d["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{d['metadata']['name']}: expected one container"
    return containers[0]


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def selectors_of(r: Rendered) -> list[tuple[str, dict[str, str]]]:
    out = []
    for d in r.docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        spec = d.get("spec", {})
        if kind in ("Deployment", "PodDisruptionBudget", "ServiceMonitor", "PodMonitor"):
            out.append((f"{kind}/{name}", spec["selector"]["matchLabels"]))
        if kind == "Service":
            out.append((f"{kind}/{name}", spec["selector"]))
        if kind == "Deployment":
            for tsc in spec["template"]["spec"].get("topologySpreadConstraints", []):
                out.append((f"{kind}/{name} topologySpread", tsc["labelSelector"]["matchLabels"]))
    return out


def repo_subscriptions(yaml: Any) -> list[dict[str, Any]]:
    subs = []
    for path in sorted((REPO / "dapr" / "subscriptions").glob("*.yaml")):
        subs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return subs


def subscription_key(doc: dict[str, Any]) -> tuple[Any, ...]:
    spec = doc["spec"]
    return (
        doc["metadata"]["name"],
        spec.get("pubsubname"),
        spec.get("topic"),
        json.dumps(spec.get("routes"), sort_keys=True),
        spec.get("deadLetterTopic"),
        json.dumps(spec.get("metadata"), sort_keys=True),
        json.dumps(spec.get("bulkSubscribe"), sort_keys=True),
        tuple(doc.get("scopes") or ()),
    )


def template_tests(rep: Report, r: Rendered, values: dict[str, Any], yaml: Any) -> None:
    """Tests that hold for every value set; `values` are the merged values of the set."""
    n = r.name
    enabled = sorted(k for k, v in values["services"].items() if v["enabled"])
    deps = deployments(r)
    dapr_cfg = r.kind("Configuration")

    def t_no_duplicate_keys() -> None:
        assert not r.duplicates, f"keys given twice: {r.duplicates}"

    def t_deployments() -> None:
        assert sorted(deps) == enabled, f"deployments {sorted(deps)} != enabled services {enabled}"

    def t_dapr_annotations() -> None:
        cfg_names = {c["metadata"]["name"] for c in dapr_cfg}
        for svc, d in deps.items():
            a = pod_annotations(d)
            c = container(d)
            want_dapr = copy.deepcopy(values["dapr"])
            _merge(want_dapr, values["services"][svc].get("dapr") or {})
            port = values["services"][svc]["port"]
            prefix = svc.upper().replace("-", "_")
            env = env_of(c)
            assert a.get("dapr.io/enabled") == "true", f"{svc}: dapr.io/enabled"
            assert a.get("dapr.io/app-id") == svc, f"{svc}: app-id {a.get('dapr.io/app-id')}"
            assert a.get("dapr.io/app-port") == str(port), f"{svc}: app-port"
            assert c["ports"][0]["containerPort"] == port and c["ports"][0]["name"] == "http"
            assert env[f"{prefix}_PORT"]["value"] == str(port), f"{svc}: {prefix}_PORT"
            assert env[f"{prefix}_HOST"]["value"] == "0.0.0.0", f"{svc}: {prefix}_HOST"
            assert "DAPR_HTTP_PORT" not in env, f"{svc}: DAPR_HTTP_PORT is the injector's"
            assert a.get("dapr.io/config") in cfg_names, (
                f"{svc}: config {a.get('dapr.io/config')} not rendered"
            )
            assert a.get("dapr.io/log-level") == want_dapr["logLevel"], f"{svc}: log-level"
            assert a.get("dapr.io/enable-metrics") == "true", f"{svc}: enable-metrics"
            assert a.get("dapr.io/metrics-port") == str(want_dapr["metricsPort"]), (
                f"{svc}: metrics-port"
            )
            sidecar = want_dapr["sidecar"]
            for key, ann in (
                ("cpuRequest", "sidecar-cpu-request"),
                ("cpuLimit", "sidecar-cpu-limit"),
                ("memoryRequest", "sidecar-memory-request"),
                ("memoryLimit", "sidecar-memory-limit"),
            ):
                if sidecar.get(key):
                    assert a.get(f"dapr.io/{ann}") == str(sidecar[key]), f"{svc}: dapr.io/{ann}"
                else:
                    assert f"dapr.io/{ann}" not in a, f"{svc}: dapr.io/{ann} set though empty"
            assert a.get("dapr.io/sidecar-memory-limit"), f"{svc}: no sidecar memory limit"
            assert a.get("dapr.io/sidecar-memory-request"), f"{svc}: no sidecar memory request"
            token = want_dapr["appToken"]["secretName"]
            if token:
                assert a.get("dapr.io/app-token-secret") == token, f"{svc}: app-token-secret"
                ref = env.get("APP_API_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef")
                assert ref == {"name": token, "key": "token"}, f"{svc}: APP_API_TOKEN ref {ref}"
            else:
                assert "dapr.io/app-token-secret" not in a and "APP_API_TOKEN" not in env
            ca = (values["services"][svc].get("caSecret") or {}).get("name")
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            vols = {v["name"]: v for v in d["spec"]["template"]["spec"].get("volumes", [])}
            if ca:
                # Only the backend's defaults name a key; the chart falls back to ca.crt.
                key = values["services"][svc]["caSecret"].get("key") or "ca.crt"
                assert mounts["ca"] == {
                    "name": "ca", "mountPath": "/etc/todo-dapr/ca", "readOnly": True
                }, f"{svc}: ca mount {mounts.get('ca')}"
                assert vols["ca"]["secret"] == {
                    "secretName": ca, "items": [{"key": key, "path": key}]
                }, f"{svc}: ca volume {vols.get('ca')}"
                assert a.get("dapr.io/volume-mounts") == "ca:/etc/todo-dapr/ca", (
                    f"{svc}: the sidecar does not see the CA"
                )
            else:
                assert "ca" not in mounts and "ca" not in vols, f"{svc}: ca mounted though unset"
                assert "dapr.io/volume-mounts" not in a, f"{svc}: volume-mounts though no CA"
            health = want_dapr["appHealthCheck"]
            if health["enabled"]:
                for key, ann in (
                    ("path", "app-health-check-path"),
                    ("probeIntervalSeconds", "app-health-probe-interval"),
                    ("probeTimeoutMilliseconds", "app-health-probe-timeout"),
                    ("threshold", "app-health-threshold"),
                ):
                    assert a.get(f"dapr.io/{ann}") == str(health[key]), f"{svc}: dapr.io/{ann}"
                assert a.get("dapr.io/enable-app-health-check") == "true", f"{svc}: app health"
            else:
                assert "dapr.io/enable-app-health-check" not in a, f"{svc}: app health set"
            api = want_dapr["apiToken"]["secretName"]
            if api:
                assert a.get("dapr.io/api-token-secret") == api, f"{svc}: api-token-secret"
                ref = env["DAPR_API_TOKEN"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": api, "key": "token"}, f"{svc}: DAPR_API_TOKEN ref"

    def t_hardening() -> None:
        for svc, d in deps.items():
            pod = d["spec"]["template"]["spec"]
            psc = pod.get("securityContext", {})
            csc = container(d).get("securityContext", {})
            assert psc.get("runAsNonRoot") is True, f"{svc}: pod runAsNonRoot"
            assert csc.get("runAsNonRoot") is True, f"{svc}: container runAsNonRoot"
            assert csc.get("readOnlyRootFilesystem") is True, f"{svc}: readOnlyRootFilesystem"
            assert csc.get("allowPrivilegeEscalation") is False, f"{svc}: allowPrivilegeEscalation"
            assert csc.get("capabilities", {}).get("drop") == ["ALL"], f"{svc}: capabilities.drop"
            assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{svc}: seccomp"
            assert psc.get("runAsUser", 1) != 0, f"{svc}: runAsUser 0"
            mounts = {m["mountPath"] for m in container(d).get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{svc}: no writable /tmp"

    def t_probes() -> None:
        for svc, d in deps.items():
            c = container(d)
            probes = copy.deepcopy(values["probes"])
            _merge(probes, values["services"][svc].get("probes") or {})
            for key, field, path in (
                ("startup", "startupProbe", "/healthz"),
                ("liveness", "livenessProbe", "/healthz"),
                ("readiness", "readinessProbe", "/readyz"),
            ):
                if probes[key]["enabled"]:
                    got = c.get(field, {}).get("httpGet", {})
                    assert got == {"path": path, "port": "http"}, f"{svc}: {field} {got}"
                    for k, v in probes[key]["spec"].items():
                        assert c[field][k] == v, f"{svc}: {field}.{k}"
                else:
                    assert field not in c, f"{svc}: {field} rendered though disabled"

    def t_replicas_and_hpa() -> None:
        hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in r.kind("HorizontalPodAutoscaler")}
        for svc, d in deps.items():
            sv = values["services"][svc]
            name = d["metadata"]["name"]
            if sv["autoscaling"]["enabled"]:
                assert name in hpas, f"{svc}: no HPA"
                assert "replicas" not in d["spec"], f"{svc}: replicas fights the HPA"
                assert hpas[name]["spec"]["minReplicas"] == sv["autoscaling"]["minReplicas"]
            else:
                assert name not in hpas, f"{svc}: HPA though disabled"
                assert d["spec"]["replicas"] == sv["replicas"], f"{svc}: replicas"
        for target in hpas:
            assert target in {d["metadata"]["name"] for d in deps.values()}, f"HPA targets {target}"

    def t_selectors() -> None:
        for where, sel in selectors_of(r):
            assert sel, f"{where}: empty selector"
            for bad in ("helm.sh/chart", "app.kubernetes.io/version"):
                assert bad not in sel, f"{where}: selector holds {bad}"
        pods = {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
            for d in deps.values()
        }
        for d in deps.values():
            sel = d["spec"]["selector"]["matchLabels"]
            assert sel.items() <= pods[d["metadata"]["name"]].items(), "selector not in pod labels"
        metrics_service = f"{RELEASE}-todo-dapr-metrics"
        for s in r.kind("Service"):
            if s["metadata"]["name"] == metrics_service:
                # The one Service with an endpoint in every pod of every service.
                sel = s["spec"]["selector"]
                hits = sorted(p for p, labels in pods.items() if sel.items() <= labels.items())
                assert hits == sorted(pods), f"{metrics_service} selects {hits}"
        for s in [
            x for x in r.kind("Service") if x["metadata"]["name"] != metrics_service
        ] + r.kind("PodDisruptionBudget"):
            sel = (
                s["spec"]["selector"]
                if s["kind"] == "Service"
                else s["spec"]["selector"]["matchLabels"]
            )
            hits = [p for p, labels in pods.items() if sel.items() <= labels.items()]
            assert len(hits) == 1, f"{s['kind']}/{s['metadata']['name']} selects {hits}"

    def t_services() -> None:
        metrics_port = values["metrics"]["port"]
        app_services = [s for s in r.kind("Service") if component(s) != "metrics"]
        for s in app_services:
            # The app port only: /metrics never rides on a Service that carries clients.
            ports = [(p["name"], p["targetPort"]) for p in s["spec"]["ports"]]
            assert ports == [("http", "http")], f"{s['metadata']['name']}: ports {ports}"
            assert metrics_port not in [p["port"] for p in s["spec"]["ports"]]
        want = sorted(k for k in enabled if values["services"][k]["service"]["enabled"])
        got = sorted(s["metadata"]["labels"]["app.kubernetes.io/component"] for s in app_services)
        assert got == want, f"services {got} != {want}"
        metrics = [s for s in r.kind("Service") if s not in app_services]
        assert len(metrics) == int(values["metrics"]["serviceMonitor"]["enabled"]), metrics
        for s in metrics:
            assert s["spec"]["type"] == "ClusterIP" and s["spec"]["clusterIP"] == "None", s["spec"]
            want_port = {"name": "metrics", "port": metrics_port, "targetPort": "metrics"}
            assert s["spec"]["ports"] == [{**want_port, "protocol": "TCP"}], s["spec"]["ports"]

    def t_metrics_port() -> None:
        port = values["metrics"]["port"]
        for svc, d in deps.items():
            c = container(d)
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"http": values["services"][svc]["port"], "metrics": port}, (
                f"{svc}: container ports {ports}"
            )
            assert env_of(c)["METRICS_PORT"]["value"] == str(port), f"{svc}: METRICS_PORT"

    def t_shutdown_order() -> None:
        # A deleted pod: the preStop sleep (endpoints drop it), the app's drain (daprd, blocked,
        # sees it fail its probe and stops sending work), the app's grace; inside the pod's limit.
        sleep = values["preStopSleepSeconds"]
        for svc, d in deps.items():
            c = container(d)
            dapr = copy.deepcopy(values["dapr"])
            _merge(dapr, values["services"][svc].get("dapr") or {})
            annotations = pod_annotations(d)
            env = env_of(c)
            if sleep:
                assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": sleep}}}, c["lifecycle"]
            else:
                assert "lifecycle" not in c, f"{svc}: a preStop hook with preStopSleepSeconds 0"
            check = dapr["appHealthCheck"]
            drains = check["enabled"] and values["services"][svc]["drainBeforeStop"]
            drain = check["probeIntervalSeconds"] * check["threshold"] + 1 if drains else 0
            if drain:
                assert env["SHUTDOWN_DRAIN_SECS"]["value"] == str(drain), f"{svc}: drain"
            else:
                assert "SHUTDOWN_DRAIN_SECS" not in env, f"{svc}: a drain without a health check"
            block = annotations.get("dapr.io/block-shutdown-duration")
            if check["enabled"] and dapr["blockShutdownSeconds"]:
                assert block == f"{dapr['blockShutdownSeconds']}s", f"{svc}: block {block}"
            else:
                assert block is None, f"{svc}: block-shutdown without an app health check"
            limit = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            assert limit >= sleep + drain + max(10, dapr["gracefulShutdownSeconds"]), f"{svc}"

    def t_node_architecture() -> None:
        arch = values.get("nodeArchitecture") or ""
        for svc, d in deps.items():
            selector = d["spec"]["template"]["spec"].get("nodeSelector") or {}
            assert selector.get("kubernetes.io/arch", "") == arch, f"{svc}: nodeSelector {selector}"
            for k, v in (values.get("nodeSelector") or {}).items():
                assert selector.get(k) == v, f"{svc}: nodeSelector {k} lost"

    def t_pdb() -> None:
        want = sorted(k for k in enabled if values["services"][k]["podDisruptionBudget"]["enabled"])
        got = sorted(
            p["metadata"]["labels"]["app.kubernetes.io/component"]
            for p in r.kind("PodDisruptionBudget")
        )
        assert got == want, f"PDBs {got} != {want}"

    def t_service_accounts_and_rbac() -> None:
        sas = {s["metadata"]["name"] for s in r.kind("ServiceAccount")}
        for svc, d in deps.items():
            sa = d["spec"]["template"]["spec"]["serviceAccountName"]
            if values["serviceAccount"]["create"]:
                assert sa in sas, f"{svc}: ServiceAccount {sa} not rendered"
        roles = {x["metadata"]["name"]: x for x in r.kind("Role")}
        for rb in r.kind("RoleBinding"):
            role = roles[rb["roleRef"]["name"]]
            for rule in role["rules"]:
                assert rule["verbs"] == ["get"], (
                    f"{role['metadata']['name']}: verbs {rule['verbs']}"
                )
                assert rule["resources"] == ["secrets"] and rule.get("resourceNames")
            for subj in rb["subjects"]:
                assert subj["name"] in sas, f"RoleBinding subject {subj['name']} missing"
            svc = rb["metadata"]["labels"]["app.kubernetes.io/component"]
            names = role["rules"][0]["resourceNames"]
            assert names == values["services"][svc]["secretStoreSecrets"], f"{svc}: Role secrets"
        assert not r.kind("ClusterRole") and not r.kind("ClusterRoleBinding"), "cluster-wide RBAC"

    def t_no_secret_values() -> None:
        assert not r.kind("Secret"), "the chart must not render Secrets"
        for pattern, what in SECRET_TEXT:
            m = pattern.search(r.text)
            assert not m, f"{what} in rendered output: {m.group(0)[:40]!r}"
        for d in r.kind("Component"):
            for item in d["spec"]["metadata"]:
                if (
                    is_secret_name(item["name"])
                    and item["name"] not in DAPR_SECRET_FIELDS_ALLOWED_LITERAL
                ):
                    assert "secretKeyRef" in item and "value" not in item, (
                        f"Component {d['metadata']['name']}: {item['name']} not a secretKeyRef"
                    )
        for svc, d in deps.items():
            for e in container(d).get("env", []):
                if is_secret_name(e["name"]):
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), (
                        f"{svc}: env {e['name']} not from a Secret"
                    )
        for cm in r.kind("ConfigMap"):
            for key, val in (cm.get("data") or {}).items():
                assert not any(p.search(val) for p, _ in SECRET_TEXT), (
                    f"ConfigMap {key}: secret text"
                )

    def t_components() -> None:
        comps = {c["metadata"]["name"]: c for c in r.kind("Component")}
        want = sorted(k for k in ("pubsub", "statestore", "secretstore") if values[k]["enabled"])
        assert sorted(comps) == want, f"components {sorted(comps)} != {want}"
        items = lambda c: {i["name"]: i for i in c["spec"]["metadata"]}  # noqa: E731
        if "pubsub" in comps:
            p = comps["pubsub"]
            assert (p["spec"]["type"], p["spec"]["version"]) == ("pubsub.kafka", "v1")
            md = items(p)
            assert md["brokers"]["value"], "no brokers"
            assert "consumerGroup" not in md and "consumerID" not in md, (
                "consumer group must default to the app-id"
            )
            if values["pubsub"]["kafka"]["authType"] == "password":
                for f in ("saslUsername", "saslPassword"):
                    assert "secretKeyRef" in md[f], f"pubsub {f} not from a Secret"
            assert sorted(p.get("scopes", [])) == sorted(values["pubsub"]["scopes"])
            local = yaml.safe_load(
                (REPO / "dapr" / "components" / "kafka" / "pubsub.yaml").read_text()
            )
            local_md = {i["name"]: i.get("value") for i in local["spec"]["metadata"]}
            for key in ("protectedTopics", "publishingScopes", "subscriptionScopes"):
                assert md[key]["value"] == local_md[key], (
                    f"pubsub {key} differs from dapr/components/kafka/pubsub.yaml"
                )
        if "statestore" in comps:
            s = comps["statestore"]
            assert (s["spec"]["type"], s["spec"]["version"]) == ("state.postgresql", "v2")
            assert "secretKeyRef" in items(s)["connectionString"], "DSN not from a Secret"
        if "secretstore" in comps:
            assert comps["secretstore"]["spec"]["type"] == "secretstores.kubernetes"

    def t_configuration() -> None:
        assert len(dapr_cfg) == 1, "one Configuration"
        spec = dapr_cfg[0]["spec"]
        assert spec["metrics"]["enabled"] is True
        assert spec["metrics"]["http"]["increasedCardinality"] is False, "increasedCardinality"
        assert spec["tracing"]["samplingRate"] == str(
            values["configuration"]["tracing"]["samplingRate"]
        )
        if values["configuration"]["scopeSecrets"] and values["secretstore"]["enabled"]:
            scope = spec["secrets"]["scopes"][0]
            allowed = sorted(
                {s for k in enabled for s in values["services"][k]["secretStoreSecrets"]}
            )
            assert scope == {
                "storeName": "secretstore",
                "defaultAccess": "deny",
                **({"allowedSecrets": allowed} if allowed else {}),
            }, f"secret scopes {scope}"

    def t_resiliency_references() -> None:
        (res,) = r.kind("Resiliency")
        pol = res["spec"]["policies"]
        for target in res["spec"]["targets"].get("components", {}).values():
            for direction in target.values():
                for kind, group in (
                    ("timeout", "timeouts"),
                    ("retry", "retries"),
                    ("circuitBreaker", "circuitBreakers"),
                ):
                    if kind in direction:
                        assert direction[kind] in pol.get(group, {}), (
                            f"unknown {kind} {direction[kind]}"
                        )

    def t_subscriptions() -> None:
        subs = r.kind("Subscription")
        comps = {c["metadata"]["name"] for c in r.kind("Component")}
        expected = [
            s
            for s in repo_subscriptions(yaml)
            if any(scope in enabled for scope in (s.get("scopes") or enabled))
        ]
        got = sorted(subscription_key(s) for s in subs)
        want = sorted(subscription_key(s) for s in expected)
        assert got == want, f"subscriptions differ from dapr/subscriptions:\n{got}\n!=\n{want}"
        for s in subs:
            assert s["apiVersion"] == "dapr.io/v2alpha1"
            assert s["spec"]["deadLetterTopic"] == f"{s['spec']['topic']}-dlq", "DLQ naming"
            if values["pubsub"]["enabled"]:
                assert s["spec"]["pubsubname"] in comps, (
                    f"pubsub {s['spec']['pubsubname']} not rendered"
                )
            for scope in s.get("scopes", []):
                assert scope in SERVICES, f"scope {scope} is no app-id"

    def t_monitoring() -> None:
        sm = r.kind("ServiceMonitor")
        pods = r.kind("PodMonitor")
        pm = [m for m in pods if not m["metadata"]["name"].endswith("-dapr-scheduler")]
        scheduler = [m for m in pods if m["metadata"]["name"].endswith("-dapr-scheduler")]
        assert bool(sm) == values["metrics"]["serviceMonitor"]["enabled"]
        assert bool(pm) == values["metrics"]["podMonitor"]["enabled"]
        assert bool(scheduler) == values["metrics"]["schedulerMonitor"]["enabled"]
        for m in scheduler:
            # Dapr's Scheduler pods, in Dapr's namespace, as the job its dashboard selects.
            assert m["spec"]["namespaceSelector"] == {
                "matchNames": [values["metrics"]["schedulerMonitor"]["namespace"]]
            }, m["spec"]
            assert m["spec"]["selector"] == {"matchLabels": {"app": "dapr-scheduler-server"}}
            endpoint = m["spec"]["podMetricsEndpoints"][0]
            assert (endpoint["port"], endpoint["path"]) == ("metrics", "/"), endpoint
            assert {"targetLabel": "job", "replacement": "dapr-scheduler"} in endpoint[
                "relabelings"
            ], endpoint
        rules = r.kind("PrometheusRule")
        assert bool(rules) == values["metrics"]["prometheusRule"]["enabled"]
        for rule in rules:
            # The rule file as written: recording rules, alerts and their `{{ $labels }}`.
            want = yaml.safe_load((REPO / "grafana/rules/todo-dapr.rules.yaml").read_text())
            assert rule["spec"]["groups"] == want["groups"], "PrometheusRule != grafana/rules"
            for key, value in values["metrics"]["prometheusRule"]["labels"].items():
                assert rule["metadata"]["labels"][key] == value, rule["metadata"]["labels"]
        def labels_set(endpoint: dict[str, Any], job: str) -> None:
            # The jobs and app_id label the dashboards and rules select on (grafana/README.md).
            rules = endpoint.get("relabelings", [])
            assert {"targetLabel": "job", "replacement": job} in rules, f"job {job}: {rules}"
            assert {
                "sourceLabels": ["__meta_kubernetes_pod_annotation_dapr_io_app_id"],
                "targetLabel": "app_id",
            } in rules, f"app_id for {job}: {rules}"

        metrics_services = [s for s in r.kind("Service") if component(s) == "metrics"]
        for m in sm:
            endpoint = m["spec"]["endpoints"][0]
            assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics"), endpoint
            selected = [
                s["metadata"]["name"]
                for s in r.kind("Service")
                if m["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
            ]
            assert selected == [s["metadata"]["name"] for s in metrics_services], (
                f"ServiceMonitor selects {selected}"
            )
            assert endpoint.get("honorLabels") is True, "the services' `service` label is renamed"
            labels_set(endpoint, "todo-dapr")
        for m in pm:
            endpoint = m["spec"]["podMetricsEndpoints"][0]
            assert (endpoint["port"], endpoint["path"]) == ("dapr-metrics", "/"), endpoint
            labels_set(endpoint, "daprd")

    def t_dashboards() -> None:
        files = sorted((CHART / "dashboards").glob("*.json"))
        cms = [
            c
            for c in r.kind("ConfigMap")
            if c["metadata"]["labels"].get(values["dashboards"]["labelKey"]) is not None
        ]
        if not values["dashboards"]["enabled"]:
            assert not cms
            return
        assert len(cms) == len(files), f"{len(cms)} dashboard ConfigMaps for {len(files)} files"
        for cm in cms:
            assert cm["metadata"]["labels"][values["dashboards"]["labelKey"]] == str(
                values["dashboards"]["labelValue"]
            )
            ((key, data),) = cm["data"].items()
            assert data == (CHART / "dashboards" / key).read_text(), f"{key} content"

    def t_unique_names() -> None:
        seen: dict[tuple[str, str, str], int] = {}
        for d in r.docs:
            key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
            seen[key] = seen.get(key, 0) + 1
        dupes = [k for k, count in seen.items() if count > 1]
        assert not dupes, f"objects rendered twice: {dupes}"
        for d in r.docs:
            assert len(d["metadata"]["name"]) <= 63 or d["kind"] in ("Role", "RoleBinding"), (
                f"{d['kind']}/{d['metadata']['name']}: name longer than 63"
            )

    def t_labels() -> None:
        for d in r.docs:
            labels = d["metadata"].get("labels", {})
            for k in (
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/managed-by",
                "helm.sh/chart",
            ):
                assert k in labels, f"{d['kind']}/{d['metadata']['name']}: label {k}"
            for k, v in (values.get("commonLabels") or {}).items():
                assert labels.get(k) == v, f"{d['kind']}/{d['metadata']['name']}: commonLabels"

    for tname, fn in list(locals().items()):
        if tname.startswith("t_") and callable(fn):
            rep.run(f"[{n}] {tname[2:]}", fn)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def set_specific_tests(
    rep: Report, by_name: dict[str, Rendered], yaml: Any, merged: dict[str, dict[str, Any]]
) -> None:
    """Tests of particular value sets: the defaults the design asks for."""

    for name in ("default", "minikube", "oke"):
        r = by_name[name]

        def t_budget(r: Rendered = r) -> None:
            for svc, d in deployments(r).items():
                a = pod_annotations(d)
                assert a["dapr.io/sidecar-memory-limit"] == "128Mi", f"{svc}: sidecar memory limit"

        def t_notification(r: Rendered = r) -> None:
            d = deployments(r)["notification"]
            assert d["spec"].get("replicas") == 3, (
                f"notification replicas {d['spec'].get('replicas')}"
            )

        def t_all_four(r: Rendered = r) -> None:
            assert sorted(deployments(r)) == sorted(SERVICES)

        rep.run(f"[{name}] sidecar memory limit 128Mi", t_budget)
        rep.run(f"[{name}] notification has 3 replicas", t_notification)
        rep.run(f"[{name}] all four services", t_all_four)

    def t_default_resources_empty() -> None:
        for svc, d in deployments(by_name["default"]).items():
            assert "resources" not in container(d), f"{svc}: resources set by default"

    def t_resiliency_mirrors_local() -> None:
        local = yaml.safe_load(
            (REPO / "dapr" / "components" / "common" / "resiliency.yaml").read_text()
        )
        (res,) = by_name["default"].kind("Resiliency")
        assert res["spec"] == local["spec"], (
            "Resiliency spec differs from dapr/components/common/resiliency.yaml"
        )

    def t_app_health_mirrors_run_file() -> None:
        # dapr/dapr.yaml, the harness and `cargo xtask up` probe apps the same way (a Rust test
        # holds those two together); the chart's defaults must not drift from them.
        run = yaml.safe_load((REPO / "dapr" / "dapr.yaml").read_text())
        chart = merged["default"]["dapr"]["appHealthCheck"]
        for app in run["apps"]:
            got = {
                "enabled": app.get("enableAppHealthCheck"),
                "path": app.get("appHealthCheckPath"),
                "probeIntervalSeconds": app.get("appHealthProbeInterval"),
                "probeTimeoutMilliseconds": app.get("appHealthProbeTimeout"),
                "threshold": app.get("appHealthThreshold"),
            }
            assert got == chart, f"dapr/dapr.yaml {app['appID']}: {got} != chart {chart}"

    def t_configuration_mirrors_local() -> None:
        local = yaml.safe_load((REPO / "dapr" / "config.yaml").read_text())["spec"]
        (cfg,) = by_name["default"].kind("Configuration")
        assert cfg["spec"]["tracing"] == local["tracing"], "tracing differs from dapr/config.yaml"
        assert cfg["spec"]["metrics"] == local["metrics"], "metrics differ from dapr/config.yaml"

    def t_default_subscriptions_complete() -> None:
        got = sorted(subscription_key(s) for s in by_name["default"].kind("Subscription"))
        want = sorted(subscription_key(s) for s in repo_subscriptions(yaml))
        assert got == want and len(got) >= 3, (
            "default render must hold every generated subscription"
        )

    def t_cluster_suite_scrapes_the_metrics_port() -> None:
        # The cluster suites (tests/tests/support/cluster.rs) read counters at each pod's
        # metrics port.
        suite = (REPO / "tests" / "tests" / "support" / "cluster.rs").read_text()
        m = re.search(r"const METRICS_PORT: u16 = (\d+);", suite)
        assert m, "support/cluster.rs has no METRICS_PORT"
        assert int(m.group(1)) == merged["local"]["metrics"]["port"], (
            f"support/cluster.rs scrapes {m.group(1)}, values-local.yaml serves "
            f"{merged['local']['metrics']['port']}"
        )

    def t_minikube() -> None:
        r = by_name["minikube"]
        backend = r.one("Service", f"{RELEASE}-todo-dapr-backend")
        assert backend["spec"]["type"] == "NodePort"
        for d in deployments(r).values():
            assert container(d)["imagePullPolicy"] == "Never"
            assert "resources" in container(d), "minikube sets small resources"

    def t_oke() -> None:
        r = by_name["oke"]
        backend = r.one("Service", f"{RELEASE}-todo-dapr-backend")
        ann = backend["metadata"].get("annotations", {})
        assert backend["spec"]["type"] == "LoadBalancer"
        assert ann.get("service.beta.kubernetes.io/oci-load-balancer-shape") == "flexible"
        # HTTPS only, from the named ranges only, and no metrics port.
        assert [p["port"] for p in backend["spec"]["ports"]] == [443], backend["spec"]["ports"]
        assert ann.get("service.beta.kubernetes.io/oci-load-balancer-ssl-ports") == "443", ann
        assert ann.get("service.beta.kubernetes.io/oci-load-balancer-tls-secret") == "todo-api-tls"
        assert backend["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"], backend["spec"]
        for svc, d in deployments(r).items():
            selector = d["spec"]["template"]["spec"]["nodeSelector"]
            assert selector == {"kubernetes.io/arch": "amd64"}, f"{svc}: {selector}"
        for svc, d in deployments(r).items():
            image = container(d)["image"]
            registry = re.escape(OKE_FILLED["image"]["registry"])
            assert re.match(rf"^{registry}/todo-dapr/{svc}:", image), image
        assert "oci-bv" in r.text, "storage class hint missing from the notes"

    def t_overrides() -> None:
        r = by_name["ci/overrides"]
        deps = deployments(r)
        assert pod_annotations(deps["notification"])["dapr.io/sidecar-memory-limit"] == "256Mi"
        assert pod_annotations(deps["notification"])["dapr.io/log-level"] == "debug"
        assert pod_annotations(deps["notification"])["dapr.io/max-body-size"] == "8Mi"
        assert pod_annotations(deps["backend"])["dapr.io/log-level"] == "info"
        assert container(deps["backend"])["image"] == (
            "registry.example.com/acme/todo-dapr/backend@sha256:" + "0" * 64
        )
        assert (
            container(deps["recurring-task"])["image"]
            == "registry.example.com/acme/todo-dapr/recurring-task:9.9.9"
        )
        assert all(d["metadata"]["namespace"] == "todo-ci" for d in r.docs)
        assert deps["backend"]["metadata"]["name"] == "todo-backend"
        # Helm reads numbers as floats: large ones must not come out as 2.592e+06.
        env = env_of(container(deps["email-delivery"]))
        assert env["EMAIL_RECORD_TTL_SECS"]["value"] == "2592000", env["EMAIL_RECORD_TTL_SECS"]
        assert env["SMTP_PORT"]["value"] == "465"
        pubsub = r.one("Component", "pubsub")
        md = {i["name"]: i for i in pubsub["spec"]["metadata"]}
        assert md["maxMessageBytes"]["value"] == "1048576", md["maxMessageBytes"]
        jwt = env_of(container(deps["backend"]))["JWT_SECRET"]
        assert jwt == {
            "name": "JWT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "jwt-secret", "key": "jwt-secret"}},
        }

    def t_minimal() -> None:
        r = by_name["ci/minimal"]
        assert sorted(deployments(r)) == ["backend", "notification"]
        assert [s["metadata"]["name"] for s in r.kind("Subscription")] == [
            "notification-task-events"
        ]
        assert not r.kind("ServiceAccount") and not r.kind("Role")

    for tname, fn in list(locals().items()):
        if tname.startswith("t_") and callable(fn):
            rep.run(f"[sets] {tname[2:]}", fn)


def negative_tests(rep: Report, helm: Any, yaml: Any, work: Path) -> None:
    """The guards and validators must reject bad input, or the green above means nothing."""

    def render_fails(values: dict[str, Any], *needles: str, chart: Path = CHART) -> None:
        """Rendering fails, and the message holds every needle (the offending path and why)."""
        try:
            render(helm, chart, values)
        except helm.HelmError as e:
            missing = [n for n in needles if n not in str(e)]
            assert not missing, f"failed without naming {missing}: {e}"
        else:
            raise AssertionError("rendered though it must not")

    # values.schema.json: Helm names the path (a JSON pointer) and the broken constraint.

    def t_schema_negative_replicas() -> None:
        render_fails(
            {"services": {"backend": {"replicas": -1}}},
            "at '/services/backend/replicas'",
            "minimum: got -1, want 1",
        )

    def t_schema_fractional_replicas() -> None:
        render_fails(
            {"services": {"notification": {"replicas": 2.5}}},
            "at '/services/notification/replicas'",
            "want integer",
        )

    def t_schema_string_for_boolean() -> None:
        render_fails(
            {"rbac": {"create": "false"}}, "at '/rbac/create'", "got string, want boolean"
        )

    def t_schema_typo_top_level() -> None:
        render_fails({"rbca": {"create": False}}, "additional properties 'rbca' not allowed")

    def t_schema_typo_nested() -> None:
        render_fails(
            {"pubsub": {"kafka": {"intialOffset": "oldest"}}},
            "at '/pubsub/kafka'",
            "additional properties 'intialOffset' not allowed",
        )

    def t_schema_typo_service_name() -> None:
        # A misspelt app-id would be a fifth, half-configured service.
        render_fails(
            {"services": {"notifcation": {"replicas": 3}}},
            "at '/services'",
            "additional properties 'notifcation' not allowed",
        )

    def t_schema_unknown_initial_offset() -> None:
        render_fails(
            {"pubsub": {"kafka": {"initialOffset": "latest"}}},
            "at '/pubsub/kafka/initialOffset'",
            "value must be one of 'oldest', 'newest'",
        )

    def t_schema_unknown_sasl_mechanism() -> None:
        # Dapr matches SHA-512 and SHA-256 exactly and falls back to SASL/PLAIN for anything else.
        render_fails(
            {"pubsub": {"kafka": {"sasl": {"mechanism": "SCRAM-SHA-512"}}}},
            "at '/pubsub/kafka/sasl/mechanism'",
            "value must be one of 'SHA-512', 'SHA-256', 'PLAINTEXT'",
        )

    def t_schema_unknown_auth_type() -> None:
        render_fails(
            {"pubsub": {"kafka": {"authType": "mtls"}}},
            "at '/pubsub/kafka/authType'",
            "value must be one of 'password', 'none'",
        )

    def t_schema_pubsub_redis() -> None:
        render_fails({"pubsub": {"type": "redis"}}, "at '/pubsub/type'", "value must be 'kafka'")

    def t_schema_port_range() -> None:
        render_fails(
            {"services": {"backend": {"port": 70000}}},
            "at '/services/backend/port'",
            "maximum: got 70,000, want 65,535",
        )

    def t_schema_pull_policy() -> None:
        render_fails(
            {"image": {"pullPolicy": "IfNotExists"}},
            "at '/image/pullPolicy'",
            "value must be one of 'Always', 'IfNotPresent', 'Never'",
        )

    def t_schema_log_level() -> None:
        render_fails(
            {"services": {"notification": {"dapr": {"logLevel": "verbose"}}}},
            "at '/services/notification/dapr/logLevel'",
            "value must be one of",
        )

    # The templates' own guards.

    def t_pubsub_redis_without_schema() -> None:
        # `--skip-schema-validation` must not bring back the silent fallback to Kafka.
        copy_dir = work / "chart-without-schema"
        shutil.copytree(CHART, copy_dir)
        (copy_dir / "values.schema.json").unlink()
        render_fails(
            {"pubsub": {"type": "redis"}},
            'pubsub.type "redis" is not supported',
            "pubsub.type: kafka",
            chart=copy_dir,
        )

    def t_placeholder_in_image() -> None:
        render_fails(
            {"image": {"registry": "<region-key>.ocir.io/<tenancy-namespace>"}},
            "unreplaced <placeholders>",
            "image.registry (<region-key> <tenancy-namespace>)",
        )

    def t_oke_file_as_shipped_fails() -> None:
        render_fails(
            yaml.safe_load((CHART / "values-oke.yaml").read_text()),
            "unreplaced <placeholders>",
            "image.registry (<region-key> <tenancy-namespace>)",
            "pubsub.kafka.brokers[0] (<region>)",
            "services.backend.service.loadBalancerSourceRanges[0] (<client-cidr>)",
            "services.email-delivery.env.SMTP_HOST (<region>)",
            "services.email-delivery.env.SMTP_FROM (<approved-sender-domain>)",
        )

    def t_mail_address_is_no_placeholder() -> None:
        r = render(
            helm,
            CHART,
            {"services": {"email-delivery": {"env": {"SMTP_FROM": "Todo <todo@example.com>"}}}},
        )
        assert "Todo <todo@example.com>" in "".join(r.values())

    def t_env_secret_literal() -> None:
        render_fails(
            {"services": {"backend": {"env": {"DATABASE_URL": "postgres://u@h/db"}}}},
            "looks like a secret",
        )

    def t_extra_env_secret_literal() -> None:
        render_fails(
            {
                "services": {
                    "email-delivery": {"extraEnv": [{"name": "SMTP_PASSWORD", "value": "x"}]}
                }
            },
            "looks like a secret",
        )

    def t_component_secret_literal() -> None:
        render_fails(
            {"pubsub": {"kafka": {"extraMetadata": [{"name": "saslPassword", "value": "x"}]}}},
            "looks like a secret",
        )

    def rendered(values: dict[str, Any]) -> Rendered:
        return Rendered("custom", render(helm, CHART, values), yaml)

    def t_secret_name_rule() -> None:
        # The Python mirror and the template agree on every case, and both on the expectation.
        wrong = [n for n, secret in SECRET_NAME_CASES.items() if is_secret_name(n) != secret]
        assert not wrong, f"render_check.is_secret_name disagrees on {wrong}"
        for name, secret in SECRET_NAME_CASES.items():
            values = {"services": {"backend": {"env": {name: "literal"}}}}
            if secret:
                render_fails(values, f"services.backend.env.{name} looks like a secret")
            else:
                env = env_of(container(deployments(rendered(values))["backend"]))
                assert env[name]["value"] == "literal", f"{name}: {env.get(name)}"

    def t_component_metadata_secret_literals() -> None:
        for name in ("oidcClientSecret", "awsSecretKey", "schemaRegistryAPISecret"):
            render_fails(
                {"pubsub": {"kafka": {"extraMetadata": [{"name": name, "value": "x"}]}}},
                f"pubsub.kafka.extraMetadata {name} looks like a secret",
            )
        render_fails(
            {"statestore": {"extraMetadata": [{"name": "awsSecretKey", "value": "x"}]}},
            "statestore.extraMetadata awsSecretKey looks like a secret",
        )
        # The same field from a Secret renders as a secretKeyRef.
        r = rendered(
            {
                "pubsub": {
                    "kafka": {
                        "extraMetadata": [
                            {
                                "name": "oidcClientSecret",
                                "secretKeyRef": {"name": "kafka-oidc", "key": "clientSecret"},
                            },
                            {"name": "oidcTokenEndpoint", "value": "https://idp.example.com/t"},
                        ]
                    }
                }
            }
        )
        md = {i["name"]: i for i in r.one("Component", "pubsub")["spec"]["metadata"]}
        assert md["oidcClientSecret"] == {
            "name": "oidcClientSecret",
            "secretKeyRef": {"name": "kafka-oidc", "key": "clientSecret"},
        }, md["oidcClientSecret"]
        assert md["oidcTokenEndpoint"]["value"] == "https://idp.example.com/t"

    def t_extra_env_signing_key_literal() -> None:
        render_fails(
            {"services": {"backend": {"extraEnv": [{"name": "JWT_SIGNING_KEY", "value": "x"}]}}},
            "services.backend.extraEnv JWT_SIGNING_KEY looks like a secret",
        )

    def t_dapr_env_joins_the_charts() -> None:
        r = rendered(
            {
                "dapr": {"extraAnnotations": {"dapr.io/env": "FOO=1, BAR=2"}},
                "services": {
                    "notification": {
                        "dapr": {"extraAnnotations": {"dapr.io/env": "GOMEMLIMIT=90MiB,BAZ=3"}}
                    }
                },
            }
        )
        assert not r.duplicates, r.duplicates
        got = {svc: pod_annotations(d)["dapr.io/env"] for svc, d in deployments(r).items()}
        assert got["backend"] == "GOMEMLIMIT=110MiB,FOO=1,BAR=2", got
        # The service's block replaces the chart-wide extraAnnotations key by key (as every
        # other `dapr` value), and its own GOMEMLIMIT wins over the chart's.
        assert got["notification"] == "GOMEMLIMIT=90MiB,BAZ=3", got

    def t_annotations_override_once() -> None:
        r = rendered(
            {
                "dapr": {"extraAnnotations": {"dapr.io/log-level": "debug"}},
                "podAnnotations": {
                    "dapr.io/sidecar-memory-limit": "256Mi",
                    "dapr.io/volume-mounts": "extra:/mnt/extra",
                    "example.com/team": "todo",
                },
                "services": {"backend": {"caSecret": {"name": "postgres-ca"}}},
            }
        )
        assert not r.duplicates, r.duplicates
        for svc, d in deployments(r).items():
            a = pod_annotations(d)
            assert a["dapr.io/log-level"] == "debug", f"{svc}: {a['dapr.io/log-level']}"
            assert a["dapr.io/sidecar-memory-limit"] == "256Mi", svc
            assert a["example.com/team"] == "todo", svc
            want = "extra:/mnt/extra"
            if svc == "backend":
                want = "ca:/etc/todo-dapr/ca," + want
            assert a["dapr.io/volume-mounts"] == want, f"{svc}: {a['dapr.io/volume-mounts']}"

    def t_app_id_is_the_charts() -> None:
        render_fails(
            {"podAnnotations": {"dapr.io/app-id": "other"}},
            "podAnnotations sets dapr.io/app-id",
        )
        render_fails(
            {"dapr": {"extraAnnotations": {"dapr.io/app-port": "9999"}}},
            "dapr.extraAnnotations sets dapr.io/app-port",
        )

    def t_duplicate_key_detector() -> None:
        assert duplicate_keys(yaml, "a:\n  b: 1\n  b: 2\n") == ["b (line 3)"]

    def t_load_balancer_without_tls() -> None:
        lb = {"services": {"backend": {"service": {"type": "LoadBalancer", "port": 443}}}}
        render_fails(lb, "services.backend.service is a LoadBalancer without TLS")
        # Accepted when asked for, or with TLS the chart renders.
        _merge(lb, {"services": {"backend": {"service": {"allowPlainHttp": True}}}})
        rendered(lb)
        r = rendered(
            {
                "services": {
                    "backend": {
                        "service": {
                            "type": "LoadBalancer",
                            "port": 8443,
                            "tls": {"secretName": "api-tls"},
                            "loadBalancerSourceRanges": ["198.51.100.0/24", "2001:db8::/32"],
                        }
                    }
                }
            }
        )
        backend = r.one("Service", f"{RELEASE}-todo-dapr-backend")
        ann = backend["metadata"]["annotations"]
        assert ann["service.beta.kubernetes.io/oci-load-balancer-ssl-ports"] == "8443", ann
        assert ann["service.beta.kubernetes.io/oci-load-balancer-tls-secret"] == "api-tls", ann
        assert backend["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24", "2001:db8::/32"]

    def t_tls_needs_a_load_balancer() -> None:
        render_fails(
            {"services": {"backend": {"service": {"tls": {"secretName": "api-tls"}}}}},
            "apply to a LoadBalancer only",
        )
        render_fails(
            {"services": {"backend": {"service": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}}}},
            "apply to a LoadBalancer only",
        )

    def t_schema_source_range() -> None:
        render_fails(
            {
                "services": {
                    "backend": {
                        "service": {
                            "type": "LoadBalancer",
                            "loadBalancerSourceRanges": ["everyone"],
                        }
                    }
                }
            },
            "loadBalancerSourceRanges/0",
        )

    def t_metrics_port_apart() -> None:
        render_fails({"metrics": {"port": 8000}}, "metrics.port 8000 is also services.backend.port")
        render_fails({"metrics": {"port": 9090}}, "sidecar's dapr.metricsPort")
        r = rendered({"metrics": {"port": 9100, "serviceMonitor": {"enabled": True}}})
        (svc,) = [s for s in r.kind("Service") if s["metadata"]["name"].endswith("-metrics")]
        assert svc["spec"]["ports"][0]["port"] == 9100

    def t_configuration_change_rolls_the_pods() -> None:
        # Sidecars read the Configuration only at start: its checksum is in every pod template.
        def sums(values: dict[str, Any]) -> set[str]:
            return {
                pod_annotations(d)["checksum/dapr-configuration"]
                for d in deployments(rendered(values)).values()
            }

        base = sums({})
        assert len(base) == 1, base
        assert sums({}) == base, "the checksum is not stable"
        changed = sums({"configuration": {"tracing": {"samplingRate": "0.5"}}})
        assert len(changed) == 1 and changed != base, (base, changed)

    def t_termination_budget() -> None:
        render_fails(
            {"terminationGracePeriodSeconds": 20},
            "terminationGracePeriodSeconds 20 is shorter than services.",
        )
        r = rendered({"preStopSleepSeconds": 0, "dapr": {"appHealthCheck": {"enabled": False}}})
        for svc, d in deployments(r).items():
            c = container(d)
            assert "lifecycle" not in c and "SHUTDOWN_DRAIN_SECS" not in env_of(c), svc
            assert "dapr.io/block-shutdown-duration" not in pod_annotations(d), svc

    def t_node_architecture_pin() -> None:
        r = rendered({"nodeArchitecture": "arm64", "nodeSelector": {"pool": "a1"}})
        for svc, d in deployments(r).items():
            selector = d["spec"]["template"]["spec"]["nodeSelector"]
            assert selector == {"kubernetes.io/arch": "arm64", "pool": "a1"}, f"{svc}: {selector}"
        render_fails(
            {"nodeArchitecture": "amd64", "nodeSelector": {"kubernetes.io/arch": "arm64"}},
            'nodeSelector kubernetes.io/arch is "arm64" but nodeArchitecture is "amd64"',
        )
        render_fails({"nodeArchitecture": "x86_64"}, "at '/nodeArchitecture'")

    def t_secret_scan_catches() -> None:
        found = secret_values_in({"a": {"password": "hunter2"}, "b": "postgres://u:p@h/db"})
        assert len(found) == 2, found

    def t_kubernetes_validate_rejects_typo() -> None:
        bad = work / "neg-deployment.yaml"
        bad.write_text(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n"
            "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
            "    spec: {containers: [{name: c, image: i}]}\n"
        )
        ok, _ = kubernetes_validate([bad])
        assert not ok, "kubernetes-validate accepted spec.replica"

    def t_schema_rejects_typo() -> None:
        bad = work / "neg-component.yaml"
        bad.write_text(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\n"
            "spec:\n  type: pubsub.kafka\n  version: v1\n  metadata:\n"
            "    - {name: brokers, vaule: 'k:9092'}\n"
        )
        ok, _ = check_jsonschema(SCHEMAS / DAPR_KIND_SCHEMA["Component"], [bad])
        assert not ok, "schema accepted a misspelt field"

    def t_schema_rejects_v1_subscription() -> None:
        bad = work / "neg-subscription.yaml"
        bad.write_text(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\n"
            "spec: {pubsubname: pubsub, topic: t, route: /x}\n"
        )
        ok, _ = check_jsonschema(SCHEMAS / DAPR_KIND_SCHEMA["Subscription"], [bad])
        assert not ok, "schema accepted spec.route without routes"

    def t_dashboards_render_when_present() -> None:
        # The repository may hold no dashboards yet: prove the template on a copy with one.
        copy_dir = work / "chart-with-dashboard"
        shutil.copytree(CHART, copy_dir)
        board = {"uid": "todo-fixture", "title": "Fixture", "panels": [], "schemaVersion": 39}
        (copy_dir / "dashboards" / "Fixture Board.json").write_text(json.dumps(board, indent=2))
        docs = [
            d
            for d in yaml.safe_load_all(
                render(helm, copy_dir, None)["todo-dapr/templates/dashboards-configmap.yaml"]
            )
            if d
        ]
        fixture = [d for d in docs if "Fixture Board.json" in (d.get("data") or {})]
        assert len(fixture) == 1, f"{len(fixture)} ConfigMaps for the fixture"
        cm = fixture[0]
        assert cm["metadata"]["name"] == f"{RELEASE}-todo-dapr-dashboard-fixture-board"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"]["Fixture Board.json"]) == board
        ok, out = kubernetes_validate([_write_docs(work / "fixture-cm", [cm])[0]])
        assert ok, out

    for tname, fn in list(locals().items()):
        if tname.startswith("t_") and callable(fn):
            rep.run(f"[negative] {tname[2:]}", fn)


def _write_docs(directory: Path, docs: list[dict[str, Any]]) -> list[Path]:
    import yaml  # the venv's PyYAML

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        kind = doc.get("kind", "x")
        name = doc.get("metadata", {}).get("name", "x")
        path = directory / f"{i:03d}-{kind}-{name}.yaml"
        path.write_text(yaml.safe_dump(clean(doc), sort_keys=False))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sync",
        action="store_true",
        help="copy dapr/subscriptions and grafana/dashboards into the chart, then exit",
    )
    args = parser.parse_args()
    if args.sync:
        sync()
        return 0

    import helm_python as helm  # noqa: PLC0415 (the venv's packages; --sync needs none)
    import yaml  # noqa: PLC0415

    start = time.monotonic()
    rep = Report()
    print(
        f"helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
        f"kubernetes {KUBE_VERSION}",
        flush=True,
    )

    step("drift: chart copies vs dapr/subscriptions and grafana/dashboards")
    problems = drift()
    rep.check(
        "drift",
        not problems,
        "; ".join(problems)
        + "\n  fix: python3 helm/tests/render_check.py --sync  (then commit helm/todo-dapr)",
    )

    step("values files")
    defaults_text = (CHART / "values.yaml").read_text()
    ROOT_DEFAULTS.update(yaml.safe_load(defaults_text))
    missing = undocumented_values(defaults_text)
    rep.check("values.yaml documented", not missing, f"no `# --` comment for {missing}")
    schema_path = CHART / "values.schema.json"
    ok, out = check_metaschema(schema_path)
    rep.check("values.schema.json is a valid draft-07 schema", ok, out)
    undescribed = undescribed_properties(json.loads(schema_path.read_text()))
    rep.check("values.schema.json describes every property", not undescribed, f"{undescribed}")
    sets = value_sets(yaml)
    for name, override, path in sets:
        files = (
            [("values.yaml", ROOT_DEFAULTS)]
            if path is None
            else [(str(path.relative_to(CHART)), override)]
        )
        for fname, data in files:
            leaks = secret_values_in(data)
            rep.check(f"[{name}] no secret values in {fname}", not leaks, "; ".join(leaks))
        if override is not None:
            unknown = unknown_keys(override, ROOT_DEFAULTS)
            rep.check(
                f"[{name}] every key exists in values.yaml", not unknown, f"unknown keys {unknown}"
            )
            # A CA for the database goes to every sidecar that loads the state store too: its DSN
            # names the same file (the local cluster found notification's sidecar failing
            # without it).
            services = override.get("services") or {}
            if ((services.get("backend") or {}).get("caSecret") or {}).get("name"):
                scopes = (override.get("statestore") or {}).get("scopes") or ROOT_DEFAULTS[
                    "statestore"
                ]["scopes"]
                missing = [
                    app
                    for app in scopes
                    if not ((services.get(app) or {}).get("caSecret") or {}).get("name")
                ]
                rep.check(
                    f"[{name}] the state store's apps mount the database CA",
                    not missing,
                    f"no caSecret for {missing}",
                )

    step(f"helm lint --strict and render: {', '.join(n for n, _, _ in sets)}")
    rendered: dict[str, Rendered] = {}
    merged: dict[str, dict[str, Any]] = {}
    for name, override, _ in sets:
        report = helm.lint(
            str(CHART),
            values=copy.deepcopy(override) if override else None,
            strict=True,
            namespace=NAMESPACE,
            kube_version=f"v{KUBE_VERSION}",
        )
        bad = [m for m in report["messages"] if m["severity"] >= 2] + [
            {"error": e} for e in report.get("errors", [])
        ]
        rep.check(f"[{name}] lint", not bad, "; ".join(m["error"] for m in bad))
        try:
            rendered[name] = Rendered(name, render(helm, CHART, override), yaml)
            merged[name] = merged_values(helm, override)
            rep.check(f"[{name}] render", True)
        except helm.HelmError as e:
            rep.check(f"[{name}] render", False, str(e))

    with tempfile.TemporaryDirectory(prefix="todo-dapr-helm-") as tmp:
        work = Path(tmp)
        step(
            f"kubernetes-validate --strict -k {KUBE_VERSION} (core objects) and check-jsonschema (Dapr)"
        )
        core: list[Path] = []
        dapr: dict[str, list[Path]] = {k: [] for k in DAPR_KIND_SCHEMA}
        skipped: set[str] = set()
        for name, r in rendered.items():
            safe = name.replace("/", "_")
            for doc, path in zip(
                r.docs, _write_docs(work / "rendered" / safe, r.docs), strict=True
            ):
                group = str(doc.get("apiVersion", "")).split("/")[0]
                if group == "dapr.io":
                    assert doc["kind"] in dapr, f"no schema for Dapr kind {doc['kind']}"
                    dapr[doc["kind"]].append(path)
                elif group == "monitoring.coreos.com":
                    skipped.add(doc["kind"])  # CRDs without a bundled schema; tested below
                else:
                    core.append(path)
        ok, out = kubernetes_validate(core)
        rep.check(f"kubernetes-validate ({len(core)} objects)", ok, out)
        # The local manifests under dapr/ go through the same schemas.
        for path in sorted((REPO / "dapr").rglob("*.yaml")):
            if path.name == "dapr.yaml":
                continue  # the multi-app run file, not a Dapr resource
            for doc in yaml.safe_load_all(path.read_text()):
                if (
                    doc
                    and doc.get("kind") in dapr
                    and str(doc.get("apiVersion", "")).startswith("dapr.io/")
                ):
                    dapr[doc["kind"]].append(path)
                    break
        for kind, files in dapr.items():
            if not files:
                rep.check(f"check-jsonschema {kind}", False, "nothing rendered to check")
                continue
            ok, out = check_jsonschema(SCHEMAS / DAPR_KIND_SCHEMA[kind], sorted(set(files)))
            rep.check(f"check-jsonschema {kind} ({len(set(files))} files)", ok, out)
        if skipped:
            print(
                f"   (structural tests only for {', '.join(sorted(skipped))}: CRDs without a schema)"
            )

        step("template tests")
        for name, r in rendered.items():
            template_tests(rep, r, merged[name], yaml)
        if all(n in rendered for n, _, _ in sets):
            set_specific_tests(rep, rendered, yaml, merged)
        negative_tests(rep, helm, yaml, work)

    took = time.monotonic() - start
    if rep.failed:
        print(f"\n{len(rep.failed)} failure(s):")
        for f in rep.failed:
            print(f"  - {f}")
    print(f"helm chart checks in {took:.1f}s")
    print(f"{rep.passed} passed, {len(rep.failed)} failed")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
