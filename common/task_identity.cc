#include "common/task_identity.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace estuary {
namespace {

constexpr char kPrefix[] = "estuary://task/";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

}  // namespace

std::string TaskIdentityUri(absl::string_view type, int index) {
  return absl::StrCat(kPrefix, type, "/", index);
}

absl::StatusOr<std::string> CertificateTaskIdentity(absl::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InvalidArgumentError("not a PEM certificate");
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  std::string found;
  const int n = names == nullptr ? 0 : sk_GENERAL_NAME_num(names.get());
  for (int i = 0; i < n; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    const absl::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                 static_cast<size_t>(ASN1_STRING_length(uri)));
    if (!absl::StartsWith(text, kPrefix)) continue;
    const std::vector<absl::string_view> parts =
        absl::StrSplit(text.substr(sizeof(kPrefix) - 1), '/');
    int index = 0;
    if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &index) ||
        index < 0 || absl::StrCat(index) != parts[1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("its task identity ", text, " is not ", kPrefix, "<type>/<index>"));
    }
    const std::string task = absl::StrCat(parts[0], ":", index);
    if (!found.empty() && found != task) {
      return absl::InvalidArgumentError(
          absl::StrCat("it names two tasks, ", found, " and ", task));
    }
    found = task;
  }
  return found;
}

}  // namespace estuary
