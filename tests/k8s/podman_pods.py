#!/usr/bin/env python3
"""Turns the plain-Kubernetes manifests `estuary k8s` renders (after
`kubectl kustomize`) into what `podman kube play` runs, changing no pod spec:

- each batch/v1 Job becomes the Pod of its template (podman 4.3 plays Pods,
  ConfigMaps and PVCs, not Jobs; Kubernetes' Job controller would make the
  same pod), named as the Job;
- Services are dropped (podman ignores them): instead every pod gets
  hostAliases mapping each Service's name in TFJob's form,
  `<name>.<namespace>.svc`, to the static IP its pod gets on the podman
  network (`kube play --ip`, in pod order); the test prints those IPs;
- containers' `ports` are dropped (podman 4.3 would publish each on the
  host, where five pods collide on 2222; on the pod network they are
  reachable without it);
- an emptyDir gets a per-pod name (podman 4.3 would share one named
  volume between all pods);
- the PersistentVolumeClaim is dropped: the test creates the named volume
  (owned by the image's non-root user, as fsGroup would make it).

Usage: podman_pods.py RENDERED.yaml OUT.yaml FIRST_IP  (prints the --ip list)
"""
import ipaddress
import sys

import yaml


def main():
    src, out, first_ip = sys.argv[1], sys.argv[2], sys.argv[3]
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    services = [d for d in docs if d["kind"] == "Service"]
    jobs = [d for d in docs if d["kind"] == "Job"]
    ip = ipaddress.ip_address(first_ip)
    ips = {}
    for i, job in enumerate(jobs):
        ips[job["metadata"]["name"]] = str(ip + i)
    aliases = []
    for svc in services:
        name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
        if name not in ips:
            sys.exit(f"podman_pods.py: Service {name} selects no Job's pod")
        aliases.append({"ip": ips[name], "hostnames": [f"{name}.{ns}.svc"]})
    played = [d for d in docs if d["kind"] == "ConfigMap"]
    for job in jobs:
        template = job["spec"]["template"]
        spec = dict(template["spec"])
        spec["hostAliases"] = aliases
        # podman 4.3 publishes a containerPort on the host (Kubernetes does
        # not): five pods on one port collide. Pods reach each other over
        # the podman network without it.
        spec["containers"] = [{k: v for k, v in c.items() if k != "ports"}
                              for c in spec["containers"]]
        # podman 4.3 makes an emptyDir a named volume called like the pod's
        # volume, shared by every pod: give each pod its own.
        pod_name = job["metadata"]["name"]
        renamed = {v["name"]: f"{pod_name}-{v['name']}"
                   for v in spec["volumes"] if "emptyDir" in v}
        spec["volumes"] = [dict(v, name=renamed.get(v["name"], v["name"]))
                           for v in spec["volumes"]]
        spec["containers"] = [
            dict(c, volumeMounts=[dict(m, name=renamed.get(m["name"], m["name"]))
                                  for m in c.get("volumeMounts", [])])
            for c in spec["containers"]]
        played.append({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": job["metadata"]["name"],
                         "labels": template["metadata"].get("labels", {})},
            "spec": spec,
        })
    with open(out, "w") as f:
        yaml.safe_dump_all(played, f, sort_keys=False)
    print(" ".join(f"--ip={ips[j['metadata']['name']]}" for j in jobs))


if __name__ == "__main__":
    main()
