#include "cli/certs_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/cert_gen.h"
#include "common/cluster.h"
#include "common/crypto.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/io/env.h"
#include "common/security.h"
#include "common/task_identity.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

constexpr char kMountDir[] = "/etc/estuary-security/";

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "estuary certs: error: %s\n", std::string(st.message()).c_str());
  return absl::IsInvalidArgument(st) ? kExitBadInput : kExitFailure;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  fchmod(fd, mode);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  return io::ReadWholeFile(io::Env::Default(), path);
}

// "worker:2,ps:1" -> worker:0, worker:1, ps:0.
absl::StatusOr<std::vector<TaskId>> ParseTasks(const std::string& flag) {
  std::vector<TaskId> out;
  for (absl::string_view item : absl::StrSplit(flag, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    int n = 0;
    if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &n) || n < 1 ||
        n > 10000) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tasks: '", item, "' is not TYPE:COUNT (e.g. worker:2)"));
    }
    for (int i = 0; i < n; ++i) out.push_back(TaskId{parts[0], i});
  }
  return out;
}

std::string HostOfAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

nlohmann::json SecurityBlock(const std::string& dir) {
  return {{"security",
           {{"ca", absl::StrCat(dir, "ca.crt")},
            {"cert", dir},
            {"key", dir},
            {"token_file", absl::StrCat(dir, "token")}}}};
}

// A Secret with every file but the CA's key, base64 as `data` wants.
std::string K8sSecret(const std::string& name, const std::string& ns,
                      const std::map<std::string, std::string>& files) {
  std::string y = absl::StrCat(
      "# Written by `estuary certs`: the job's TLS certificates and token.\n"
      "# Mount it in every task's pod at ", kMountDir,
      " (a volume of this Secret,\n"
      "# defaultMode 0440, group = the pod's fsGroup) and put this block in the\n"
      "# job file (`estuary k8s --security_secret NAME` does both):\n"
      "#   ",
      SecurityBlock(kMountDir).dump(),
      "\n# Each task reads <type>-<index>.crt/.key by its TF_CONFIG task.\n"
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ",
      name, "\n");
  if (!ns.empty()) absl::StrAppend(&y, "  namespace: ", ns, "\n");
  absl::StrAppend(&y, "  labels:\n    app.kubernetes.io/part-of: estuary\ntype: Opaque\ndata:\n");
  for (const auto& [file, content] : files) {
    absl::StrAppend(&y, "  ", file, ": ", absl::Base64Escape(content), "\n");
  }
  return y;
}

}  // namespace

int CertsCommand(int argc, char** argv) {
  std::string out, tf_config_json, tasks_flag, hosts_flag, secret_name = "estuary-security",
                                                          ns;
  int days = 365;
  FlagSet flags(
      "estuary certs --out DIR (--tf_config JSON | --tasks TYPE:N,...) [flags]",
      "Makes the security material of a job: a CA (kept if DIR already has one), a "
      "certificate per task of the cluster signed by it (SANs: the task's TF_CONFIG host, "
      "--hosts, localhost, 127.0.0.1, ::1), a client certificate for tools, the job token, "
      "the job file's \"security\" block (DIR/security.json) and a Kubernetes Secret "
      "(DIR/k8s-secret.yaml). Keys and the token are written mode 0600.");
  flags.String("out", &out, "Directory to write to (created).");
  flags.String("tf_config", &tf_config_json,
               "The cluster (TF_CONFIG JSON; default: the TF_CONFIG environment variable): one "
               "certificate per task, named by its host.");
  flags.String("tasks", &tasks_flag,
               "Instead of a TF_CONFIG: the tasks, TYPE:COUNT comma-separated "
               "(chief:1,worker:2,ps:2,evaluator:1).");
  flags.String("hosts", &hosts_flag,
               "Extra host names / IPs for every task certificate's SANs, comma-separated.");
  flags.Int("days", &days, "Validity of the certificates, in days.");
  flags.String("k8s_secret", &secret_name, "Name of the Kubernetes Secret.");
  flags.String("namespace", &ns, "Namespace of the Kubernetes Secret (default: none given).");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && out.empty()) st = absl::InvalidArgumentError("--out is required");
  if (st.ok() && !flags.positional().empty()) {
    st = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", flags.positional()[0], "'"));
  }
  if (st.ok() && (days < 1 || days > 36500)) {
    st = absl::InvalidArgumentError("--days must be in [1, 36500]");
  }
  std::vector<TaskId> tasks;
  std::map<TaskId, std::string> task_host;
  if (st.ok() && !tasks_flag.empty()) {
    absl::StatusOr<std::vector<TaskId>> t = ParseTasks(tasks_flag);
    if (t.ok()) tasks = *std::move(t);
    st = t.status();
  } else if (st.ok()) {
    absl::StatusOr<TfConfig> tf = TfConfigFromEnvironment(tf_config_json);
    if (!tf.ok()) {
      st = tf.status();
    } else if (tf->cluster.empty()) {
      st = absl::InvalidArgumentError(
          "no tasks: give --tf_config (or TF_CONFIG) with a cluster, or --tasks");
    } else {
      for (const TaskId& t : tf->cluster.AllTasks()) {
        tasks.push_back(t);
        if (absl::StatusOr<std::string> a = tf->cluster.Address(t); a.ok()) {
          task_host[t] = HostOfAddress(*a);
        }
      }
    }
  }
  if (!st.ok()) {
    std::fprintf(stderr, "estuary certs: error: %s (see --help)\n", std::string(st.message()).c_str());
    return kExitBadInput;
  }
  if (out.back() != '/') out += '/';
  if (mkdir(out.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(absl::UnavailableError(absl::StrCat("cannot create ", out, ": ", std::strerror(errno))));
  }
  const absl::Duration validity = absl::Hours(24) * days;
  std::vector<std::string> extra_hosts = absl::StrSplit(hosts_flag, ',', absl::SkipEmpty());

  // The CA: kept when present, so adding a task later needs no new CA.
  PemPair ca;
  const std::string ca_crt = absl::StrCat(out, "ca.crt"), ca_key = absl::StrCat(out, "ca.key");
  if (Exists(ca_crt) && Exists(ca_key)) {
    absl::StatusOr<std::string> c = ReadFile(ca_crt), k = ReadFile(ca_key);
    if (!c.ok()) return Fail(c.status());
    if (!k.ok()) return Fail(k.status());
    ca = {*c, *k};
    std::printf("kept the CA %s\n", ca_crt.c_str());
  } else {
    absl::StatusOr<PemPair> made = MakeCertificateAuthority("Estuary job CA", validity);
    if (!made.ok()) return Fail(made.status());
    ca = *std::move(made);
    if (absl::Status w = WriteFile(ca_key, ca.key, 0600); !w.ok()) return Fail(w);
    if (absl::Status w = WriteFile(ca_crt, ca.cert, 0644); !w.ok()) return Fail(w);
    std::printf("wrote the CA %s\n", ca_crt.c_str());
  }
  std::map<std::string, std::string> secret_files = {{"ca.crt", ca.cert}};

  // `task_uri`: the task identity (task_identity.h); none for the tools'
  // client certificate, which may then make read-only calls only.
  auto issue = [&](const std::string& stem, const std::string& cn, std::vector<std::string> hosts,
                   const std::string& task_uri) -> absl::Status {
    for (const char* h : {"localhost", "127.0.0.1", "::1"}) hosts.push_back(h);
    hosts.insert(hosts.end(), extra_hosts.begin(), extra_hosts.end());
    std::set<std::string> seen;
    std::vector<std::string> unique;
    for (std::string& h : hosts) {
      if (!h.empty() && seen.insert(h).second) unique.push_back(std::move(h));
    }
    absl::StatusOr<PemPair> pair = MakeSignedCertificate(ca, cn, unique, validity, task_uri);
    if (!pair.ok()) return pair.status();
    const std::string base = absl::StrCat(out, stem);
    if (absl::Status w = WriteFile(base + ".key", pair->key, 0600); !w.ok()) return w;
    if (absl::Status w = WriteFile(base + ".crt", pair->cert, 0644); !w.ok()) return w;
    secret_files[stem + ".crt"] = pair->cert;
    secret_files[stem + ".key"] = pair->key;
    if (!task_uri.empty()) unique.push_back(task_uri);
    std::printf("wrote %s.crt (SANs: %s)\n", base.c_str(), absl::StrJoin(unique, ", ").c_str());
    return absl::OkStatus();
  };
  for (const TaskId& t : tasks) {
    std::vector<std::string> hosts;
    if (auto it = task_host.find(t); it != task_host.end()) hosts.push_back(it->second);
    absl::Status s = issue(TaskFileStem(t), t.ToString(), hosts, TaskIdentityUri(t.type, t.index));
    if (!s.ok()) return Fail(s);
  }
  if (absl::Status s = issue("client", "client", {}, ""); !s.ok()) return Fail(s);

  const std::string token_path = absl::StrCat(out, "token");
  std::string token;
  if (Exists(token_path)) {
    absl::StatusOr<std::string> t = ReadFile(token_path);
    if (!t.ok()) return Fail(t.status());
    token = *t;
    std::printf("kept the job token %s\n", token_path.c_str());
  } else {
    absl::StatusOr<std::string> raw = RandomBytes(32);
    if (!raw.ok()) return Fail(raw.status());
    token = absl::StrCat(absl::BytesToHexString(*raw), "\n");
    if (absl::Status w = WriteFile(token_path, token, 0600); !w.ok()) return Fail(w);
    std::printf("wrote the job token %s\n", token_path.c_str());
  }
  secret_files["token"] = token;

  char abs[4096];
  std::string abs_out = out;
  if (out[0] != '/' && getcwd(abs, sizeof(abs)) != nullptr) abs_out = io::JoinPath(abs, out);
  if (abs_out.back() != '/') abs_out += '/';
  const std::string block = SecurityBlock(abs_out).dump(2) + "\n";
  if (absl::Status w = WriteFile(absl::StrCat(out, "security.json"), block, 0644); !w.ok()) {
    return Fail(w);
  }
  if (absl::Status w = WriteFile(absl::StrCat(out, "k8s-secret.yaml"),
                                 K8sSecret(secret_name, ns, secret_files), 0600);
      !w.ok()) {
    return Fail(w);
  }
  std::printf("wrote %ssecurity.json (the job file's \"security\" block) and %sk8s-secret.yaml "
              "(Secret %s)\n%s",
              out.c_str(), out.c_str(), secret_name.c_str(), block.c_str());
  return kExitOk;
}

}  // namespace estuary
