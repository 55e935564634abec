// A listener's `tls` table: certificates (SNI), versions, ciphers, tickets, client
// certificates. Every file is read and checked here, at load, so a bad certificate is
// a config error naming the file, and the running config stays.
#include <map>

#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

const std::vector<std::string_view>& tlsKeys() {
  static const std::vector<std::string_view> kKeys = {"certificates",
                                                      "min_version",
                                                      "ciphers",
                                                      "ciphersuites",
                                                      "groups",
                                                      "handshake_timeout",
                                                      "session_tickets",
                                                      "session_ticket_rotation",
                                                      "client_ca",
                                                      "client_auth",
                                                      "client_subject_header",
                                                      "client_fingerprint_header"};
  return kKeys;
}

// Relative paths are relative to the config file's directory, so a config and its
// certificates can move together.
std::string resolvePath(const Diagnostics& diag, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const std::string& file = diag.file();
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return path;
  return file.substr(0, slash + 1) + path;
}

bool validHeaderName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Reads one { cert, key, server_names } entry; the nodes are kept for error positions.
struct CertNodes {
  const toml::node* table = nullptr;
  const toml::node* cert = nullptr;
  const toml::node* key = nullptr;
};

bool readCertificate(Diagnostics& diag, const toml::node& element, tls::CertificateFiles& out,
                     CertNodes& nodes) {
  const toml::table* table = element.as_table();
  if (table == nullptr) {
    diag.error(element,
               "each tls.certificates entry must be a table: { cert = \"...\", key = \"...\" }");
    return false;
  }
  TableReader entry(diag, *table, "in tls.certificates", {"cert", "key", "server_names"});
  nodes.table = &element;
  nodes.cert = entry.find("cert");
  nodes.key = entry.find("key");
  bool ok = true;
  if (!entry.getString("cert", out.cert_file)) {
    if (nodes.cert == nullptr) diag.error(element, "tls.certificates entry: \"cert\" is required");
    ok = false;
  }
  if (!entry.getString("key", out.key_file)) {
    if (nodes.key == nullptr) diag.error(element, "tls.certificates entry: \"key\" is required");
    ok = false;
  }
  std::vector<std::pair<std::string, const toml::node*>> names;
  if (entry.getStringArray("server_names", names)) {
    for (auto& [name, node] : names) {
      bool wildcard = name.rfind("*.", 0) == 0;
      std::string_view rest = wildcard ? std::string_view(name).substr(2) : std::string_view(name);
      if (rest.empty() || rest.find('*') != std::string_view::npos) {
        diag.error(*node, "server name " + quoted(name) +
                              ": a wildcard may only be a whole first label, as in "
                              "\"*.example.com\"");
        ok = false;
        continue;
      }
      out.server_names.push_back(name);
    }
  }
  out.cert_file = resolvePath(diag, out.cert_file);
  out.key_file = resolvePath(diag, out.key_file);
  return ok;
}

}  // namespace

void readListenerTls(TableReader& listener, Listener& out) {
  Diagnostics& diag = listener.diag();
  const toml::table* table = listener.getTable("tls");
  if (table == nullptr) return;
  const toml::node& tls_node = *listener.find("tls");
  TableReader tls(diag, *table, "in [[listeners]] tls", tlsKeys());
  tls::ServerSettings settings;
  size_t errors_before = diag.count();

  std::vector<CertNodes> cert_nodes;
  const toml::node* certs = tls.find("certificates");
  const toml::array* array = certs != nullptr ? certs->as_array() : nullptr;
  if (certs == nullptr) {
    diag.error(tls_node, "listener " + quoted(out.name) +
                             ": tls needs certificates = [{ cert = \"...\", key = \"...\" }]");
  } else if (array == nullptr || array->empty()) {
    diag.error(*certs, "tls.certificates must be a non-empty array of { cert, key } tables");
  } else {
    for (size_t i = 0; i < array->size(); ++i) {
      tls::CertificateFiles files;
      CertNodes nodes;
      if (readCertificate(diag, *array->get(i), files, nodes)) {
        settings.certificates.push_back(std::move(files));
        cert_nodes.push_back(nodes);
      }
    }
  }

  std::string version;
  if (tls.getString("min_version", version)) {
    if (version == "1.2") {
      settings.min_version = TLS1_2_VERSION;
    } else if (version == "1.3") {
      settings.min_version = TLS1_3_VERSION;
    } else {
      diag.error(*tls.find("min_version"),
                 "tls.min_version must be \"1.2\" or \"1.3\" (got " + quoted(version) + ")");
    }
  }
  tls.getString("ciphers", settings.ciphers);
  tls.getString("ciphersuites", settings.ciphersuites);
  tls.getString("groups", settings.groups);
  tls.getDuration("handshake_timeout", 1, settings.handshake_timeout_ms);
  tls.getBool("session_tickets", settings.session_tickets);
  tls.getDuration("session_ticket_rotation", 60'000, settings.ticket_key_rotation_ms);

  std::string ca;
  bool has_ca = tls.getString("client_ca", ca);
  std::string auth;
  if (tls.getString("client_auth", auth)) {
    if (auth == "required") {
      settings.client_auth = tls::ClientAuth::Required;
    } else if (auth == "optional") {
      settings.client_auth = tls::ClientAuth::Optional;
    } else if (auth == "none") {
      settings.client_auth = tls::ClientAuth::None;
    } else {
      diag.error(*tls.find("client_auth"),
                 "tls.client_auth must be \"required\", \"optional\" or \"none\" (got " +
                     quoted(auth) + ")");
    }
  } else if (has_ca) {
    settings.client_auth = tls::ClientAuth::Required;  // a CA alone means: require it
  }
  if (settings.client_auth != tls::ClientAuth::None && !has_ca) {
    diag.error(*tls.find("client_auth"),
               "tls.client_auth = " + quoted(auth) + " needs client_ca = \"ca.pem\"");
  }
  settings.client_ca_file = resolvePath(diag, ca);
  for (auto [key, field] :
       {std::pair{"client_subject_header", &settings.client_subject_header},
        std::pair{"client_fingerprint_header", &settings.client_fingerprint_header}}) {
    std::string name;
    if (!tls.getString(key, name)) continue;
    if (!name.empty() && !validHeaderName(name)) {
      diag.error(*tls.find(key), std::string("tls.") + key +
                                     " must be a header name (letters, digits, '-', '_') or \"\"");
      continue;
    }
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    *field = name;
  }
  if (diag.count() != errors_before || settings.certificates.empty()) return;

  settings.http2 = out.http2;
  tls::ContextError error;
  out.tls = tls::ServerContext::build(settings, error);
  if (out.tls != nullptr) return;
  // Point at the entry that names the offending file.
  const toml::node* at = &tls_node;
  for (size_t i = 0; i < settings.certificates.size(); ++i) {
    if (error.file == settings.certificates[i].cert_file && cert_nodes[i].cert) {
      at = cert_nodes[i].cert;
      break;
    }
    if (error.file == settings.certificates[i].key_file && cert_nodes[i].key) {
      at = cert_nodes[i].key;
      break;
    }
  }
  if (!error.file.empty() && error.file == settings.client_ca_file && tls.find("client_ca")) {
    at = tls.find("client_ca");
  }
  diag.error(*at, "listener " + quoted(out.name) + ": " + error.reason);
}

void readRedirectToHttps(TableReader& listener, Listener& out) {
  Diagnostics& diag = listener.diag();
  const toml::node* node = listener.find("redirect_to_https");
  if (node == nullptr) return;
  if (const auto* flag = node->as_boolean()) {
    out.redirect_https_port = flag->get() ? 443 : 0;
  } else if (const auto* port = node->as_integer();
             port && port->get() >= 1 && port->get() <= 65535) {
    out.redirect_https_port = static_cast<uint16_t>(port->get());
  } else {
    diag.error(*node, "\"redirect_to_https\" must be true or the HTTPS port (1-65535)");
    return;
  }
  if (out.redirect_https_port != 0 && listener.find("tls") != nullptr) {
    diag.error(*node, "listener " + quoted(out.name) +
                          ": redirect_to_https is for a plain listener, and this one has tls");
  }
}

void readPoolTls(TableReader& pool, const std::string& where, Pool& out) {
  Diagnostics& diag = pool.diag();
  const toml::node* node = pool.find("tls");
  if (node == nullptr) return;
  tls::ClientSettings settings;
  std::map<std::string, const toml::node*> file_nodes;
  if (const auto* flag = node->as_boolean()) {
    if (!flag->get()) return;  // tls = false: plain TCP
  } else if (const toml::table* table = node->as_table()) {
    TableReader t(diag, *table, "in " + where + " tls",
                  {"sni", "ca_file", "verify", "cert", "key", "min_version"});
    t.getString("sni", settings.server_name);
    t.getBool("verify", settings.verify);
    for (auto [key, field] :
         {std::pair{"ca_file", &settings.ca_file}, std::pair{"cert", &settings.cert_file},
          std::pair{"key", &settings.key_file}}) {
      if (t.getString(key, *field)) {
        *field = resolvePath(diag, *field);
        file_nodes[*field] = t.find(key);
      }
    }
    if (settings.cert_file.empty() != settings.key_file.empty()) {
      diag.error(*node, where + ": a client certificate needs both tls.cert and tls.key");
      return;
    }
    std::string version;
    if (t.getString("min_version", version)) {
      if (version == "1.2" || version == "1.3") {
        settings.min_version = version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
      } else {
        diag.error(*t.find("min_version"),
                   "tls.min_version must be \"1.2\" or \"1.3\" (got " + quoted(version) + ")");
        return;
      }
    }
  } else {
    diag.error(*node, where +
                          ": \"tls\" must be true or a table { sni, ca_file, verify, cert, "
                          "key }");
    return;
  }
  tls::ContextError error;
  out.tls = tls::ClientContext::build(settings, error);
  if (out.tls != nullptr) return;
  auto it = file_nodes.find(error.file);
  diag.error(it != file_nodes.end() ? *it->second : *node, where + ": " + error.reason);
}

}  // namespace gw::config::detail
