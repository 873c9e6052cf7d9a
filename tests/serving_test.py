"""`estuary serve` end to end with TF Serving's real clients.

Trains a LinearClassifier on the Titanic columns (tests/compat/testdata/
titanic.csv: 712 passengers train, the other 179 are the requests), exports
it with a parsing receiver (`estuary export`), predicts in process
(`estuary predict`), and starts `estuary serve --port 0 --rest_api_port 0` as
a real process. Then:
- the PyPI tensorflow-serving-api stubs: Predict with serialized
  tf.train.Examples, Classify, Regress (the binary head's "regression"
  signature; the classifier's serving_default is refused as TF Serving
  refuses it), GetModelMetadata, GetModelStatus;
- plain HTTP: :predict with {"b64": ...} examples (row and columnar),
  :classify with JSON feature maps, status and metadata;
  every value equals in-process `estuary predict` to 1e-6;
- bad requests (wrong dtype, unknown model / version / signature, garbage
  bytes, malformed JSON, an oversize body) get TF Serving's codes, and the
  server keeps serving;
- a new version directory is loaded; deleting it while serving ends it
  (END with an error) and the older version serves again;
- SIGTERM: exit 0;
- TLS: a second server with --ssl_config_file (TF Serving's SSLConfig,
  client_verify: `estuary certs` material) answers the stubs over
  grpc.secure_channel with a client certificate, refuses plaintext and
  certificate-less clients; bad SSL configs are exit 2 naming file and field.

Runs under the TF venv (TensorFlow 2.15 + tensorflow-serving-api 2.15).
Usage: serving_test.py --tool PATH_TO_ESTUARY [unittest args]
"""
import argparse
import base64
import csv
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tensorflow-serving-api 2.15's generated modules predate protobuf 4's upb
# backend (model_service_pb2 sets DESCRIPTOR.has_options): use the pure one.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import classification_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import regression_pb2  # noqa: E402

ESTUARY = None
HERE = os.path.dirname(os.path.abspath(__file__))
TITANIC = os.path.join(HERE, "compat", "testdata", "titanic.csv")
N_TRAIN = 712
COLUMNS = ["survived", "pclass", "sex", "age", "sibsp", "parch", "fare", "embarked"]
DEFAULTS = [0, 0, "", 0.0, 0, 0, 0.0, ""]
MAX_BODY = 1 << 20
TOL = 1e-6
DEADLINE = 120  # seconds: every RPC, HTTP call and wait (a loaded 2-core machine)


def write_clean_csvs(out_dir):
    with open(TITANIC, newline="") as f:
        rows = list(csv.DictReader(f))
    clean = [[int(r["Survived"]), int(r["Pclass"]), r["Sex"],
              float(r["Age"]) if r["Age"] else 28.0, int(r["SibSp"]), int(r["Parch"]),
              float(r["Fare"]), r["Embarked"] or "S"] for r in rows]
    paths = {}
    for split, part in (("train", clean[:N_TRAIN]), ("eval", clean[N_TRAIN:])):
        paths[split] = os.path.join(out_dir, f"{split}.csv")
        with open(paths[split], "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows(part)
    return paths, clean[N_TRAIN:]


def job(model_dir, paths):
    common = {"format": "csv", "header": True, "column_defaults": DEFAULTS,
              "label_key": "survived"}
    return {
        "model_dir": model_dir,
        "estimator": {"type": "linear_classifier"},
        "feature_columns": [
            {"type": "numeric", "key": "fare", "normalizer": {"mean": 32.0, "stddev": 50.0}},
            {"type": "numeric", "key": "age", "normalizer": {"mean": 29.5, "stddev": 13.0}},
            {"type": "bucketized", "source_column": "age",
             "boundaries": [5, 12, 18, 25, 35, 45, 60]},
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "categorical_with_vocabulary_list", "key": "embarked",
             "vocabulary_list": ["C", "Q", "S"]},
            {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
             "vocabulary_list": [1, 2, 3]},
            {"type": "crossed", "keys": ["sex", "pclass"], "hash_bucket_size": 16},
        ],
        "train_input": dict(common, files=[paths["train"]], batch_size=32,
                            shuffle_buffer_size=N_TRAIN, num_epochs=-1),
        "eval_input": dict(common, files=[paths["eval"]], batch_size=64),
        "run_config": {"tf_random_seed": 42},
        "train_spec": {"max_steps": 200},
    }


def feature_map(row):
    """A passenger as TF Serving's JSON feature map (floats with a point)."""
    _, pclass, sex, age, sibsp, parch, fare, embarked = row
    return {"pclass": pclass, "sex": sex, "age": float(age), "sibsp": sibsp,
            "parch": parch, "fare": float(fare), "embarked": embarked}


def example(row):
    f = tf.train.Feature
    m = feature_map(row)
    feats = {}
    for k, v in m.items():
        if isinstance(v, str):
            feats[k] = f(bytes_list=tf.train.BytesList(value=[v.encode()]))
        elif isinstance(v, float):
            feats[k] = f(float_list=tf.train.FloatList(value=[v]))
        else:
            feats[k] = f(int64_list=tf.train.Int64List(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature=feats))


def run(args):
    p = subprocess.run([ESTUARY] + args, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"estuary {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p.stdout


class Server:
    """`estuary serve` as a child process; ports read from its log."""

    def __init__(self, args):
        self.proc = subprocess.Popen([ESTUARY, "serve"] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()
        self.grpc_port = int(self.wait_for(r"Running gRPC ModelServer at [^:]+:(\d+)").group(1))
        self.rest_port = int(self.wait_for(r"Exporting HTTP/REST API at:localhost:(\d+)").group(1))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.log.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"no log line matching {pattern!r}; log:\n{''.join(self.log)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=DEADLINE)


def http(port, method, path, body=None):
    data = body if isinstance(body, (bytes, type(None))) else body.encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=DEADLINE) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class ServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="serving_test_")
        paths, cls.rows = write_clean_csvs(cls.work)
        model_dir = os.path.join(cls.work, "model")
        job_path = model_dir + ".json"
        with open(job_path, "w") as f:
            json.dump(job(model_dir, paths), f)
        run(["train", job_path, "--max_steps", "200"])
        out = model_dir + ".predictions.jsonl"
        run(["predict", job_path, "--out", out])
        with open(out) as f:
            cls.expected = [json.loads(line) for line in f]
        assert len(cls.expected) == len(cls.rows), (len(cls.expected), len(cls.rows))
        cls.export_dir = run(["export", job_path]).strip().splitlines()[-1]
        cls.base = os.path.dirname(cls.export_dir)
        cls.version = int(os.path.basename(cls.export_dir))
        cls.server = Server(["--port", "0", "--rest_api_port", "0", "--model_name", "titanic",
                             "--model_base_path", cls.base, "--max_request_bytes", str(MAX_BODY),
                             "--file_system_poll_wait_seconds", "0.2"])
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.server.grpc_port}")
        cls.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
        cls.model_stub = model_service_pb2_grpc.ModelServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        assert code == 0, f"estuary serve exited {code} on SIGTERM:\n{''.join(cls.server.log)}"

    def assertClose(self, got, want, what):
        def flat(v):
            return [float(x) for e in v for x in flat_list(e)] if isinstance(v, list) else [float(v)]

        def flat_list(e):
            return flat(e) if isinstance(e, list) else [e]

        got, want = flat(got), flat(want)
        self.assertEqual(len(got), len(want), what)
        for g, w in zip(got, want):
            self.assertAlmostEqual(g, w, delta=TOL, msg=what)

    def predict_request(self, rows, signature="predict"):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "titanic"
        req.model_spec.signature_name = signature
        req.inputs["examples"].CopyFrom(
            tf.make_tensor_proto([example(r).SerializeToString() for r in rows], dtype=tf.string))
        return req

    # ---------------------------------------------------------------- gRPC

    def test_grpc_predict_equals_in_process_predict(self):
        resp = self.predict_stub.Predict(self.predict_request(self.rows), timeout=DEADLINE)
        self.assertEqual(resp.model_spec.version.value, self.version)
        keys = set(resp.outputs)
        self.assertTrue({"logits", "logistic", "probabilities", "class_ids", "classes"} <= keys, keys)
        compared = set(keys) & set(self.expected[0])
        self.assertTrue({"logits", "logistic", "probabilities", "class_ids", "classes"} <= compared,
                        (keys, set(self.expected[0])))
        for key in keys:
            arr = tf.make_ndarray(resp.outputs[key])
            self.assertEqual(arr.shape[0], len(self.rows), key)
            for i, want in enumerate(self.expected):
                got = arr[i].tolist()
                if key not in want:
                    continue
                if arr.dtype == object:
                    self.assertEqual([g.decode() for g in got],
                                     want[key] if isinstance(want[key], list) else [want[key]], key)
                else:
                    self.assertClose(got, want[key], f"{key}[{i}]")

    def test_grpc_classify_and_regress(self):
        req = classification_pb2.ClassificationRequest()
        req.model_spec.name = "titanic"
        req.input.example_list.examples.extend([example(r) for r in self.rows[:20]])
        resp = self.predict_stub.Classify(req, timeout=DEADLINE)
        self.assertEqual(len(resp.result.classifications), 20)
        for c, want in zip(resp.result.classifications, self.expected):
            self.assertEqual([x.label for x in c.classes], want["all_classes"])
            self.assertClose([x.score for x in c.classes], want["probabilities"], "scores")

        rreq = regression_pb2.RegressionRequest()
        rreq.model_spec.name = "titanic"
        rreq.input.CopyFrom(req.input)
        with self.assertRaises(grpc.RpcError) as e:  # serving_default classifies
            self.predict_stub.Regress(rreq, timeout=DEADLINE)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("Expected regression signature method_name", e.exception.details())
        rreq.model_spec.signature_name = "regression"
        rresp = self.predict_stub.Regress(rreq, timeout=DEADLINE)
        self.assertClose([r.value for r in rresp.result.regressions],
                         [w["logistic"] for w in self.expected[:20]], "regress")

    def test_grpc_metadata_and_status(self):
        req = get_model_metadata_pb2.GetModelMetadataRequest()
        req.model_spec.name = "titanic"
        req.metadata_field.append("signature_def")
        resp = self.predict_stub.GetModelMetadata(req, timeout=DEADLINE)
        sigs = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(sigs)
        self.assertTrue({"serving_default", "predict", "classification", "regression"}
                        <= set(sigs.signature_def), set(sigs.signature_def))
        self.assertEqual(sigs.signature_def["serving_default"].method_name,
                         "tensorflow/serving/classify")
        self.assertEqual(sigs.signature_def["predict"].inputs["examples"].dtype, tf.string)

        sreq = get_model_status_pb2.GetModelStatusRequest()
        sreq.model_spec.name = "titanic"
        sresp = self.model_stub.GetModelStatus(sreq, timeout=DEADLINE)
        states = {s.version: s.state for s in sresp.model_version_status}
        self.assertEqual(states.get(self.version), get_model_status_pb2.ModelVersionStatus.AVAILABLE)

    def test_grpc_bad_requests(self):
        def code_of(call, req):
            with self.assertRaises(grpc.RpcError) as e:
                call(req, timeout=DEADLINE)
            return e.exception.code(), e.exception.details()

        req = self.predict_request(self.rows[:1])
        req.model_spec.name = "nope"
        self.assertEqual(code_of(self.predict_stub.Predict, req)[0], grpc.StatusCode.NOT_FOUND)
        req = self.predict_request(self.rows[:1])
        req.model_spec.version.value = 12345
        self.assertEqual(code_of(self.predict_stub.Predict, req),
                         (grpc.StatusCode.NOT_FOUND,
                          "Servable not found for request: Specific(titanic, 12345)"))
        req = self.predict_request(self.rows[:1], signature="nope")
        self.assertEqual(code_of(self.predict_stub.Predict, req)[0],
                         grpc.StatusCode.FAILED_PRECONDITION)
        req = self.predict_request(self.rows[:1])
        req.inputs["examples"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
        self.assertEqual(code_of(self.predict_stub.Predict, req)[0],
                         grpc.StatusCode.INVALID_ARGUMENT)
        req = self.predict_request(self.rows[:1])
        req.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"\x0a\xff\xffgarbage"]))
        self.assertEqual(code_of(self.predict_stub.Predict, req)[0],
                         grpc.StatusCode.INVALID_ARGUMENT)
        sreq = get_model_status_pb2.GetModelStatusRequest()
        sreq.model_spec.name = "nope"
        self.assertEqual(code_of(self.model_stub.GetModelStatus, sreq)[0],
                         grpc.StatusCode.NOT_FOUND)
        # Still serving.
        self.predict_stub.Predict(self.predict_request(self.rows[:1]), timeout=DEADLINE)

    # ---------------------------------------------------------------- REST

    def test_rest_predict_b64_and_classify_feature_maps(self):
        port = self.server.rest_port
        b64 = [{"b64": base64.b64encode(example(r).SerializeToString()).decode()}
               for r in self.rows[:30]]
        code, body = http(port, "POST", "/v1/models/titanic:predict",
                          json.dumps({"signature_name": "predict", "instances": b64}))
        self.assertEqual(code, 200, body)
        self.assertEqual(len(body["predictions"]), 30)
        for got, want in zip(body["predictions"], self.expected):
            self.assertClose(got["logistic"], want["logistic"], "logistic")
            self.assertClose(got["logits"], want["logits"], "logits")
            self.assertEqual(got["classes"], want["classes"])
        code, body = http(port, "POST", f"/v1/models/titanic/versions/{self.version}:predict",
                          json.dumps({"signature_name": "predict", "inputs": b64[:3]}))
        self.assertEqual(code, 200, body)
        self.assertClose([v[0] for v in body["outputs"]["logistic"]],
                         [w["logistic"] for w in self.expected[:3]], "columnar")

        code, body = http(port, "POST", "/v1/models/titanic:classify",
                          json.dumps({"examples": [feature_map(r) for r in self.rows[:30]]}))
        self.assertEqual(code, 200, body)
        for got, want in zip(body["results"], self.expected):
            self.assertEqual([label for label, _ in got], want["all_classes"])
            self.assertClose([score for _, score in got], want["probabilities"], "classify")

        code, body = http(port, "GET", "/v1/models/titanic")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["model_version_status"][0]["state"], "AVAILABLE")
        code, body = http(port, "GET", "/v1/models/titanic/metadata")
        self.assertEqual(code, 200, body)
        self.assertIn("predict", body["metadata"]["signature_def"]["signature_def"])

    def test_rest_bad_requests(self):
        port = self.server.rest_port
        cases = [
            ("/v1/models/titanic:predict", "{not json", 400),
            ("/v1/models/nope:predict", '{"instances": [1]}', 404),
            ("/v1/models/titanic/versions/9:predict", '{"instances": [1]}', 404),
            ("/v1/models/titanic:predict", '{"signature_name": "nope", "instances": [1]}', 400),
            ("/v1/models/titanic:predict", '{"signature_name": "predict", "instances": [1.5]}', 400),
            ("/v1/models/titanic:predict",
             '{"signature_name": "predict", "instances": [{"b64": "AAEC"}]}', 400),
            ("/v1/models/titanic:classify", '{"examples": [{"age": [1, "x"]}]}', 400),
            ("/v1/models/titanic:predict", " " * (2 * MAX_BODY), 413),
        ]
        for path, body, want in cases:
            code, reply = http(port, "POST", path, body)
            self.assertEqual(code, want, (path, body[:60], reply))
            self.assertIn("error", reply)
        code, _ = http(port, "GET", "/v1/models/titanic")
        self.assertEqual(code, 200)

    # ------------------------------------------------------------- TLS

    def tls_files(self):
        """`estuary certs` material and TF Serving SSLConfig text (PEM inline)."""
        certs = os.path.join(self.work, "certs")
        if not os.path.exists(os.path.join(certs, "serving-0.crt")):
            run(["certs", "--out", certs, "--tasks", "serving:1"])

        def read(name):
            with open(os.path.join(certs, name)) as f:
                return f.read()

        def field(name, pem):
            return f'{name}: "{pem.replace(chr(10), chr(92) + "n")}"\n'

        pems = {n: read(n) for n in ("ca.crt", "serving-0.crt", "serving-0.key",
                                     "client.crt", "client.key")}
        config = (field("server_key", pems["serving-0.key"]) +
                  field("server_cert", pems["serving-0.crt"]) +
                  field("custom_ca", pems["ca.crt"]) + "client_verify: true\n")
        return pems, config

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_tls_mutual_grpc_with_tf_serving_ssl_config(self):
        pems, config = self.tls_files()
        server = Server(["--port", "0", "--rest_api_port", "0", "--model_name", "titanic",
                         "--model_base_path", self.base, "--file_system_poll_wait_seconds", "0",
                         "--ssl_config_file", self.write("ssl.config", config)])
        try:
            self.assertIn("(TLS)", "".join(server.log))
            target = f"localhost:{server.grpc_port}"
            creds = grpc.ssl_channel_credentials(
                root_certificates=pems["ca.crt"].encode(),
                private_key=pems["client.key"].encode(),
                certificate_chain=pems["client.crt"].encode())
            with grpc.secure_channel(target, creds) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                resp = stub.Predict(self.predict_request(self.rows[:20]), timeout=DEADLINE)
                logistic = tf.make_ndarray(resp.outputs["logistic"])
                for i, want in enumerate(self.expected[:20]):
                    self.assertClose(logistic[i].tolist(), want["logistic"], f"logistic[{i}]")

            def refused(channel):
                with channel:
                    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                    with self.assertRaises(grpc.RpcError) as e:
                        stub.Predict(self.predict_request(self.rows[:1]), timeout=30)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)

            # A plaintext client, and a TLS client without a client certificate.
            refused(grpc.insecure_channel(target))
            refused(grpc.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates=pems["ca.crt"].encode())))
            # REST stays plain HTTP, as in TF Serving.
            code, _ = http(server.rest_port, "GET", "/v1/models/titanic")
            self.assertEqual(code, 200)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))

    def test_tls_bad_ssl_config_is_exit_2_naming_file_and_field(self):
        pems, config = self.tls_files()
        cases = [
            (os.path.join(self.work, "absent.config"), "absent.config"),
            (self.write("bad_cert.config", config.replace("server_cert: \"-----BEGIN",
                                                          "server_cert: \"-----NOPE")),
             "bad_cert.config: server_cert is not a PEM certificate"),
            (self.write("no_ca.config", config.split("custom_ca")[0] + "client_verify: true\n"),
             "no_ca.config: custom_ca is empty, but client_verify needs"),
            (self.write("typo.config", "server_pem: \"x\"\n"), "typo.config:1:"),
        ]
        for path, want in cases:
            p = subprocess.run([ESTUARY, "serve", "--port", "0", "--model_base_path", self.base,
                                "--ssl_config_file", path],
                               capture_output=True, text=True, timeout=DEADLINE)
            self.assertEqual(p.returncode, 2, (path, p.stdout, p.stderr))
            self.assertIn("estuary serve: error: ", p.stderr)
            self.assertIn(want, p.stderr)

    # ----------------------------------------------------- versions on disk

    def test_zz_new_version_loads_and_a_deleted_one_ends(self):
        newer = os.path.join(self.base, str(self.version + 1))
        shutil.copytree(self.export_dir, os.path.join(self.base, ".incoming"))
        os.rename(os.path.join(self.base, ".incoming"), newer)
        sreq = get_model_status_pb2.GetModelStatusRequest()
        sreq.model_spec.name = "titanic"

        def state_of(v):
            resp = self.model_stub.GetModelStatus(sreq, timeout=DEADLINE)
            return {s.version: s for s in resp.model_version_status}.get(v)

        def wait(cond, what):
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end:
                if cond():
                    return
                time.sleep(0.1)  # polling an observable state, with a deadline
            self.fail(f"timed out waiting for {what}")

        AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        END = get_model_status_pb2.ModelVersionStatus.END
        wait(lambda: state_of(self.version + 1) is not None
             and state_of(self.version + 1).state == AVAILABLE, "the new version")
        resp = self.predict_stub.Predict(self.predict_request(self.rows[:1]), timeout=DEADLINE)
        self.assertEqual(resp.model_spec.version.value, self.version + 1)
        shutil.rmtree(newer)
        # Latest-1 policy: the old version comes back once the newer is gone.
        wait(lambda: state_of(self.version + 1).state == END, "the deleted version to end")
        self.assertIn("removed", state_of(self.version + 1).status.error_message)
        wait(lambda: state_of(self.version) is not None and state_of(self.version).state == AVAILABLE,
             "the older version")
        resp = self.predict_stub.Predict(self.predict_request(self.rows[:1]), timeout=DEADLINE)
        self.assertEqual(resp.model_spec.version.value, self.version)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    args, rest = parser.parse_known_args()
    ESTUARY = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
