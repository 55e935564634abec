#include "gateway/tls/context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gateway/tls/session_tickets.h"
#include "gateway/tls/tls_transport.h"

namespace gw::tls {

const char kDefaultCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
const char kDefaultGroups[] = "X25519:P-256:P-384";

namespace {

// ALPN wire format: length-prefixed names, in the server's order of preference.
const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
const unsigned char kAlpnH2[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Plain fopen first, so a missing or unreadable file gets errno's words rather than
// OpenSSL's "system lib".
bool readable(const std::string& file, ContextError& error) {
  FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) {
    error = {file, std::string("cannot read ") + file + ": " + std::strerror(errno)};
    return false;
  }
  std::fclose(f);
  return true;
}

bool checkValidity(X509* cert, const std::string& file, ContextError& error) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    error = {file, "certificate in " + file + " has expired"};
    return false;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    error = {file, "certificate in " + file + " is not valid yet"};
    return false;
  }
  return true;
}

std::vector<std::string> sanDnsNames(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_STRING* s = name->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

// `arg` non-null: the listener serves HTTP/2 (kAlpnH2).
int onAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
           unsigned int in_length, void* arg) {
  unsigned char* selected = nullptr;
  unsigned char selected_length = 0;
  const unsigned char* ours = arg != nullptr ? kAlpnH2 : kAlpn;
  unsigned int ours_length = arg != nullptr ? sizeof kAlpnH2 : sizeof kAlpn;
  // SSL_select_next_proto walks the server's list first: h2 wins when both offer it.
  if (SSL_select_next_proto(&selected, &selected_length, ours, ours_length, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  }
  *out = selected;
  *out_length = selected_length;
  return SSL_TLSEXT_ERR_OK;
}

// Settings every certificate's context shares, so that switching context by SNI
// changes only the certificate.
bool configureServer(SSL_CTX* ctx, const ServerSettings& s, ContextError& error) {
  SSL_CTX_set_min_proto_version(ctx, s.min_version);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, s.ciphers.empty() ? kDefaultCiphers : s.ciphers.c_str()) != 1) {
    error = {"", "tls.ciphers: no usable cipher in " + std::string(s.ciphers)};
    return false;
  }
  if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()) != 1) {
    error = {"", "tls.ciphersuites: no usable suite in " + s.ciphersuites};
    return false;
  }
  if (SSL_CTX_set1_groups_list(ctx, s.groups.empty() ? kDefaultGroups : s.groups.c_str()) != 1) {
    error = {"", "tls.groups: unknown group in " + s.groups};
    return false;
  }
  ERR_clear_error();
  static const unsigned char kContextId[] = "gateway";
  SSL_CTX_set_session_id_context(ctx, kContextId, sizeof kContextId - 1);
  // No server-side session cache (it takes a lock): resumption is by ticket only, and a
  // ticket is readable by every worker (session_tickets.h).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (s.session_tickets) {
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &onTicketKey);
    SSL_CTX_set_timeout(ctx, static_cast<long>(2 * s.ticket_key_rotation_ms / 1000));
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  SSL_CTX_set_alpn_select_cb(ctx, &onAlpn, s.http2 ? const_cast<unsigned char*>(kAlpnH2) : nullptr);
  if (s.client_auth != ClientAuth::None) {
    if (!readable(s.client_ca_file, error)) return false;
    if (SSL_CTX_load_verify_locations(ctx, s.client_ca_file.c_str(), nullptr) != 1) {
      error = {s.client_ca_file,
               "cannot load client CA " + s.client_ca_file + ": " + takeOpensslError()};
      return false;
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca_file.c_str());
    if (names == nullptr) {
      error = {s.client_ca_file, "no certificate in client CA " + s.client_ca_file};
      ERR_clear_error();
      return false;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (s.client_auth == ClientAuth::Required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  return true;
}

bool loadPair(SSL_CTX* ctx, const CertificateFiles& files, ContextError& error) {
  if (!readable(files.cert_file, error) || !readable(files.key_file, error)) return false;
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
    error = {files.cert_file,
             "cannot load certificate " + files.cert_file + ": " + takeOpensslError()};
    return false;
  }
  if (!checkValidity(SSL_CTX_get0_certificate(ctx), files.cert_file, error)) return false;
  bool loaded = SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH &&
      ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_TYPE_MISMATCH) {
    error = {files.key_file,
             "cannot load private key " + files.key_file + ": " + takeOpensslError()};
    return false;
  }
  if (!loaded || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    error = {files.key_file,
             "private key " + files.key_file + " does not match certificate " + files.cert_file};
    return false;
  }
  return true;
}

}  // namespace

std::string takeOpensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

ServerContext::~ServerContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

std::shared_ptr<const ServerContext> ServerContext::build(const ServerSettings& settings,
                                                          ContextError& error) {
  std::shared_ptr<ServerContext> out(new ServerContext());
  out->settings_ = settings;
  if (settings.certificates.empty()) {
    error = {"", "tls needs at least one certificate"};
    return nullptr;
  }
  for (size_t i = 0; i < settings.certificates.size(); ++i) {
    const CertificateFiles& files = settings.certificates[i];
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      error = {"", "cannot create a TLS context: " + takeOpensslError()};
      return nullptr;
    }
    out->contexts_.push_back(ctx);
    if (!configureServer(ctx, settings, error) || !loadPair(ctx, files, error)) return nullptr;
    SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
    SSL_CTX_set_app_data(ctx, out.get());
    std::vector<std::string> names = files.server_names;
    if (names.empty()) names = sanDnsNames(SSL_CTX_get0_certificate(ctx));
    for (const std::string& name : names) {
      std::string n = lowered(name);
      // The first certificate that names a host wins.
      if (n.rfind("*.", 0) == 0) {
        out->wildcard_.emplace(n.substr(2), i);
      } else {
        out->exact_.emplace(n, i);
      }
    }
  }
  return out;
}

int ServerContext::findCertificate(std::string_view name) const {
  if (auto it = exact_.find(name); it != exact_.end()) return static_cast<int>(it->second);
  // A wildcard covers exactly one label: *.example.com matches a.example.com only.
  size_t dot = name.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) {
      return static_cast<int>(it->second);
    }
  }
  return -1;
}

int ServerContext::onServerName(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  char lower[256];
  size_t length = std::strlen(name);
  int index = -1;
  if (length < sizeof lower) {
    for (size_t i = 0; i < length; ++i) {
      char c = name[i];
      lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    index = self->findCertificate(std::string_view(lower, length));
  }
  if (index < 0) {
    if (TlsTransport* t = TlsTransport::fromSsl(ssl)) t->noteUnknownServerName();
    return SSL_TLSEXT_ERR_OK;  // unknown name: the default certificate
  }
  if (index > 0) SSL_set_SSL_CTX(ssl, self->contexts_[static_cast<size_t>(index)]);
  return SSL_TLSEXT_ERR_OK;
}

SSL* ServerContext::newConnection() const {
  SSL* ssl = SSL_new(contexts_[0]);
  if (ssl != nullptr) SSL_set_accept_state(ssl);
  return ssl;
}

ClientContext::~ClientContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<const ClientContext> ClientContext::build(const ClientSettings& settings,
                                                          ContextError& error) {
  std::shared_ptr<ClientContext> out(new ClientContext());
  out->settings_ = settings;
  out->ctx_ = SSL_CTX_new(TLS_client_method());
  if (out->ctx_ == nullptr) {
    error = {"", "cannot create a TLS context: " + takeOpensslError()};
    return nullptr;
  }
  SSL_CTX* ctx = out->ctx_;
  SSL_CTX_set_min_proto_version(ctx, settings.min_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set1_groups_list(ctx, kDefaultGroups);
  if (settings.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!settings.ca_file.empty()) {
      if (!readable(settings.ca_file, error)) return nullptr;
      if (SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1) {
        error = {settings.ca_file,
                 "cannot load CA file " + settings.ca_file + ": " + takeOpensslError()};
        return nullptr;
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      error = {"", "cannot load the system trust store: " + takeOpensslError()};
      return nullptr;
    }
  }
  if (!settings.cert_file.empty()) {
    CertificateFiles files{settings.cert_file, settings.key_file, {}};
    if (!loadPair(ctx, files, error)) return nullptr;
  }
  return out;
}

SSL* ClientContext::newConnection(const std::string& endpoint_host) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  SSL_set_alpn_protos(ssl, kAlpn, sizeof kAlpn);
  const std::string& name = settings_.server_name.empty() ? endpoint_host : settings_.server_name;
  if (!name.empty()) {
    unsigned char ip[16];
    bool is_ip =
        inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
    if (is_ip) {
      if (settings_.verify) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      if (settings_.verify) SSL_set1_host(ssl, name.c_str());
    }
  }
  return ssl;
}

}  // namespace gw::tls
