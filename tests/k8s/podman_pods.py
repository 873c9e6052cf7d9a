#!/usr/bin/env python3
"""Turns the manifests `estuary k8s` renders (after kustomize) into what
`podman kube play` runs, keeping each pod spec:

- plain: each batch/v1 Job becomes the Pod of its template (podman 4.3
  plays Pods, ConfigMaps and PVCs, not Jobs; Kubernetes' Job controller
  would make the same pod), named as the Job;
- TFJob: does what Kubeflow's training operator does: one Pod per replica,
  `<job>-<type>-<i>`, with the replica's restartPolicy and TF_CONFIG
  injected into the container `tensorflow`;
- Services are dropped (podman ignores them): instead every pod gets
  hostAliases mapping each task's name in TFJob's form,
  `<pod>.<namespace>.svc`, to the static IP its pod gets on the podman
  network (`kube play --ip`, in pod order); the script prints those IPs;
- containers' `ports` are dropped (podman 4.3 would publish each on the
  host, where five pods collide on 2222; on the pod network they are
  reachable without it);
- an emptyDir gets a per-pod name (podman 4.3 would share one named
  volume between all pods);
- the PersistentVolumeClaim is dropped: the test creates the named volume
  (owned by the image's non-root user, as fsGroup would make it).

Usage: podman_pods.py RENDERED.yaml OUT.yaml FIRST_IP  (prints the --ip list)
"""
import copy as copy_module
import ipaddress
import json
import sys

import yaml


def plain_pods(docs):
    """(name, namespace, labels, pod spec) of each Job's pod."""
    for job in (d for d in docs if d["kind"] == "Job"):
        template = job["spec"]["template"]
        yield (job["metadata"]["name"], job["metadata"].get("namespace", "default"),
               template["metadata"].get("labels", {}), dict(template["spec"]))


def tfjob_pods(docs):
    """The pods Kubeflow's training operator makes for each TFJob: one per
    replica, named <job>-<type>-<i>, the replica spec's restartPolicy, and
    TF_CONFIG injected into the container `tensorflow` (the cluster in TFJob's
    address form, the evaluator included)."""
    for tfjob in (d for d in docs if d["kind"] == "TFJob"):
        name = tfjob["metadata"]["name"]
        ns = tfjob["metadata"].get("namespace", "default")
        specs = tfjob["spec"]["tfReplicaSpecs"]

        def port(replica):
            for c in replica["template"]["spec"]["containers"]:
                if c["name"] == "tensorflow":
                    for p in c.get("ports", []):
                        if p.get("name") == "tfjob-port":
                            return p["containerPort"]
            return 2222

        cluster = {rtype.lower(): [f"{name}-{rtype.lower()}-{i}.{ns}.svc:{port(r)}"
                                   for i in range(r.get("replicas", 1))]
                   for rtype, r in specs.items()}
        for rtype, r in specs.items():
            for i in range(r.get("replicas", 1)):
                pod = f"{name}-{rtype.lower()}-{i}"
                spec = dict(r["template"]["spec"])
                spec["restartPolicy"] = r.get("restartPolicy", "Never")
                tf_config = json.dumps({"cluster": cluster,
                                        "task": {"type": rtype.lower(), "index": i},
                                        "environment": "cloud"})
                spec["containers"] = [
                    dict(c, env=c.get("env", []) + [{"name": "TF_CONFIG", "value": tf_config}])
                    if c["name"] == "tensorflow" else c
                    for c in spec["containers"]]
                labels = dict(r["template"].get("metadata", {}).get("labels", {}))
                labels.update({"training.kubeflow.org/job-name": name,
                               "training.kubeflow.org/replica-type": rtype.lower(),
                               "training.kubeflow.org/replica-index": str(i)})
                yield pod, ns, labels, spec


def main():
    src, out, first_ip = sys.argv[1], sys.argv[2], sys.argv[3]
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    pods = list(plain_pods(docs)) + list(tfjob_pods(docs))
    ip = ipaddress.ip_address(first_ip)
    ips = {name: str(ip + i) for i, (name, _, _, _) in enumerate(pods)}
    # What the Services (plain) or the operator's per-pod Services (TFJob)
    # give: <pod>.<namespace>.svc -> the pod.
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    for svc in services:
        if svc not in ips:
            sys.exit(f"podman_pods.py: Service {svc} selects no pod")
    aliases = [{"ip": ips[name], "hostnames": [f"{name}.{ns}.svc"]}
               for name, ns, _, _ in pods]
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    played = []
    for pod_name, _, labels, spec in pods:
        # podman 4.3 fills a ConfigMap's volume again for each pod that
        # mounts it: a pod already running could read its job file while the
        # next pod's start rewrote it, empty (seen: "job.json:1:1: invalid
        # JSON ... unexpected end of input", a restart). Each pod gets its
        # own copy, as each node's kubelet gives it one.
        volumes = []
        for v in spec["volumes"]:
            cm = v.get("configMap")
            if cm is not None:
                if cm["name"] not in config_maps:
                    sys.exit(f"podman_pods.py: pod {pod_name} mounts ConfigMap {cm['name']}, "
                             "which the manifests do not have")
                own = copy_module.deepcopy(config_maps[cm["name"]])
                own["metadata"]["name"] = f"{pod_name}-{cm['name']}"
                played.append(own)
                v = dict(v, configMap=dict(cm, name=own["metadata"]["name"]))
            volumes.append(v)
        spec["volumes"] = volumes
        spec["hostAliases"] = aliases
        # podman 4.3 publishes a containerPort on the host (Kubernetes does
        # not): five pods on one port collide. Pods reach each other over
        # the podman network without it.
        spec["containers"] = [{k: v for k, v in c.items() if k != "ports"}
                              for c in spec["containers"]]
        # podman 4.3 makes an emptyDir a named volume called like the pod's
        # volume, shared by every pod: give each pod its own.
        renamed = {v["name"]: f"{pod_name}-{v['name']}"
                   for v in spec["volumes"] if "emptyDir" in v}
        spec["volumes"] = [dict(v, name=renamed.get(v["name"], v["name"]))
                           for v in spec["volumes"]]
        spec["containers"] = [
            dict(c, volumeMounts=[dict(m, name=renamed.get(m["name"], m["name"]))
                                  for m in c.get("volumeMounts", [])])
            for c in spec["containers"]]
        played.append({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod_name, "labels": labels}, "spec": spec})
    with open(out, "w") as f:
        yaml.safe_dump_all(played, f, sort_keys=False)
    print(" ".join(f"--ip={ips[name]}" for name, _, _, _ in pods))


if __name__ == "__main__":
    main()
