#pragma once
// TLS contexts built from config on the control thread, then shared read-only by every
// worker (an SSL_CTX may create SSL objects on many threads at once; nothing here is
// mutated after build). A reload builds new contexts from the files; connections that
// are open keep the SSL (and so the context) they started with.

#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw::tls {

enum class ClientAuth { None, Optional, Required };

struct CertificateFiles {
  std::string cert_file;  // PEM: the certificate, then its chain
  std::string key_file;   // PEM private key
  // Names this certificate answers for ("api.example.com", "*.example.com"). Empty:
  // the DNS names in the certificate's subjectAltName.
  std::vector<std::string> server_names;
};

// A listener's `tls` table, resolved (paths absolute or relative to the working dir).
struct ServerSettings {
  std::vector<CertificateFiles> certificates;  // at least one; the first is the default
  int min_version = TLS1_2_VERSION;            // TLS1_2_VERSION or TLS1_3_VERSION
  std::string ciphers;                         // TLS 1.2 cipher list; "" = kDefaultCiphers
  std::string ciphersuites;                    // TLS 1.3 suites; "" = OpenSSL's default (all AEAD)
  std::string groups;                          // key exchange groups; "" = kDefaultGroups
  uint64_t handshake_timeout_ms = 10'000;
  bool session_tickets = true;
  uint64_t ticket_key_rotation_ms = 3'600'000;  // a ticket is accepted for up to 2x this
  std::string client_ca_file;                   // mTLS; "" = no client certificates
  ClientAuth client_auth = ClientAuth::None;
  // Upstream request headers for a verified client certificate ("" = not sent). Any
  // header of these names coming from the client is removed.
  std::string client_subject_header = "x-client-cert-subject";
  std::string client_fingerprint_header = "x-client-cert-sha256";
  bool http2 = false;  // ALPN offers "h2" (first) as well as "http/1.1"
};

// ECDHE with AEAD ciphers only (forward secrecy, no CBC, no RSA key exchange).
extern const char kDefaultCiphers[];
extern const char kDefaultGroups[];

// What went wrong while building a context: the file it concerns ("" if none) and why.
struct ContextError {
  std::string file;
  std::string reason;
};

class ServerContext {
 public:
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Reads every file and builds the contexts. On failure returns null and fills `error`.
  static std::shared_ptr<const ServerContext> build(const ServerSettings& settings,
                                                    ContextError& error);

  const ServerSettings& settings() const { return settings_; }
  // A new server-side SSL for one connection (null when OpenSSL is out of memory).
  SSL* newConnection() const;
  // The certificate for an SNI name (lower case), or -1 when none matches.
  int findCertificate(std::string_view name) const;
  SSL_CTX* certificateContext(size_t index) const { return contexts_[index]; }
  size_t certificateCount() const { return contexts_.size(); }

 private:
  ServerContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);

  ServerSettings settings_;
  std::vector<SSL_CTX*> contexts_;  // one per certificate, same settings; [0] = default
  std::map<std::string, size_t, std::less<>> exact_;     // name -> certificate
  std::map<std::string, size_t, std::less<>> wildcard_;  // "example.com" for *.example.com
};

// Upstream (client-side) TLS for one pool.
struct ClientSettings {
  std::string server_name;  // SNI and the name verified; "" = the endpoint's host
  std::string ca_file;      // "" = the system trust store
  bool verify = true;
  std::string cert_file;  // optional client certificate
  std::string key_file;
  int min_version = TLS1_2_VERSION;
};

class ClientContext {
 public:
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;
  static std::shared_ptr<const ClientContext> build(const ClientSettings& settings,
                                                    ContextError& error);
  const ClientSettings& settings() const { return settings_; }
  // `name`: SNI and the name verified when settings().server_name is empty (the
  // endpoint's host). An IP address is verified against the certificate's IP SANs.
  SSL* newConnection(const std::string& name) const;

 private:
  ClientContext() = default;
  ClientSettings settings_;
  SSL_CTX* ctx_ = nullptr;
};

// The text of the first error in OpenSSL's queue for this thread (and clears it).
std::string takeOpensslError();

}  // namespace gw::tls
