#pragma once
// Test certificates made in-process with OpenSSL (so a test can also make an expired
// one, which the openssl 3.0 CLI cannot). Written as PEM files into TEST_TMPDIR.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace gw::testing {

inline std::string testDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

struct TestCert {
  std::string cert;  // PEM file paths
  std::string key;
};

// A self-signed EC certificate for `cn` with DNS SANs `names`, valid from
// now + not_before_s to now + not_after_s.
inline TestCert makeCert(const std::string& stem, const std::string& cn,
                         const std::vector<std::string>& names, long not_before_s = -3600,
                         long not_after_s = 86400) {
  TestCert out{testDir() + "/" + stem + ".pem", testDir() + "/" + stem + ".key"};
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), std::rand());
  X509_gmtime_adj(X509_getm_notBefore(x), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(x), not_after_s);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!names.empty()) {
    std::string san;
    for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  FILE* f = std::fopen(out.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(out.key.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace gw::testing
