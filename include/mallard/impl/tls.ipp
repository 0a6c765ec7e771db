// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_TLS_IPP
#define MALLARD_IMPL_TLS_IPP

// wss:// on OpenSSL: loading and checking the certificate and key, and the
// TLS handshake in front of the same HTTP and WebSocket handling as ws://.
// Compiled once, by <mallard/src_tls.hpp>, in separate mode.

#include <mallard/detail/erased_stream.hpp>
#include <mallard/detail/listener.hpp>
#include <mallard/detail/tcp_stream.hpp>
#include <mallard/detail/tls_acceptor.hpp>
#include <mallard/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mallard {

namespace detail {

using ssl_stream = beast::ssl_stream<tcp_stream>;
/// What HTTP and the WebSocket session run on after the TLS handshake: the
/// TLS stream behind erased handlers (see erased_stream.hpp for why).
using tls_transport = erased_stream<ssl_stream>;

/// Frees an OpenSSL object with its own function.
template <class T, void (*Free)(T*)>
struct openssl_deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;

/// OpenSSL's reason for the last failure, for error messages; clears its queue.
inline std::string openssl_reason()
{
    unsigned long last = 0;
    while (unsigned long code = ERR_get_error())
        last = code;
    if (last == 0)
        return "no PEM data found";
    char const* reason = ERR_reason_error_string(last);
    return reason ? reason : "unknown OpenSSL error";
}

/// One of the two PEM inputs, read and named for error messages.
struct pem_source {
    std::string text;
    std::string name; // `certificate chain file "x.pem"` or `certificate_chain_pem`
};

[[noreturn]] inline void throw_tls(std::string const& message)
{
    throw std::invalid_argument("mallard::load_tls: " + message);
}

inline pem_source read_pem(std::string const& file, std::string const& pem, char const* what,
                           char const* file_field, char const* pem_field)
{
    if (!file.empty() && !pem.empty())
        throw_tls(std::string("both ") + file_field + " and " + pem_field +
                  " are set; give the " + what + " one way");
    if (pem.empty() && file.empty())
        throw_tls(std::string("no ") + what + "; set " + file_field + " (or " + pem_field + ")");
    if (!pem.empty())
        return {pem, pem_field};
    std::string const name = std::string(what) + " file \"" + file + "\"";
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw_tls("cannot read " + name + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof())
        throw_tls("cannot read " + name);
    return {std::move(text).str(), name};
}

inline std::string asn1_time_text(ASN1_TIME const* time)
{
    bio_ptr out(BIO_new(BIO_s_mem()));
    if (!out || ASN1_TIME_print(out.get(), time) != 1)
        return "an unreadable date";
    char* data = nullptr;
    auto const size = BIO_get_mem_data(out.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

/// The first certificate of a chain, checked to be valid now.
inline x509_ptr leaf_certificate(pem_source const& chain)
{
    ERR_clear_error();
    bio_ptr in(BIO_new_mem_buf(chain.text.data(), static_cast<int>(chain.text.size())));
    x509_ptr leaf(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
    if (!leaf)
        throw_tls(chain.name + " holds no PEM certificate (" + openssl_reason() + ")");
    if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0)
        throw_tls("the certificate in " + chain.name + " expired on " +
                  asn1_time_text(X509_get0_notAfter(leaf.get())) + "; renew it");
    if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) > 0)
        throw_tls("the certificate in " + chain.name + " is not valid before " +
                  asn1_time_text(X509_get0_notBefore(leaf.get())) +
                  "; check the clock or the certificate");
    return leaf;
}

inline int pem_password(char* buffer, int size, int, void* password)
{
    auto const& text = *static_cast<std::string const*>(password);
    if (text.size() > static_cast<std::size_t>(size))
        return -1;
    std::memcpy(buffer, text.data(), text.size());
    return static_cast<int>(text.size());
}

inline pkey_ptr private_key(pem_source const& key, std::string const& password)
{
    ERR_clear_error();
    bio_ptr in(BIO_new_mem_buf(key.text.data(), static_cast<int>(key.text.size())));
    auto& mutable_password = const_cast<std::string&>(password); // read only, by pem_password
    pkey_ptr pkey(PEM_read_bio_PrivateKey(in.get(), nullptr, pem_password, &mutable_password));
    if (!pkey)
        throw_tls(key.name + " holds no usable PEM private key (" + openssl_reason() + ")" +
                  (password.empty() ? "; if it is encrypted, set private_key_password"
                                    : "; check private_key_password"));
    return pkey;
}

/// A server certificate and key loaded into an OpenSSL context.
class openssl_tls_context final : public tls_acceptor {
public:
    explicit openssl_tls_context(tls_options const& options)
    {
        auto const chain = read_pem(options.certificate_chain_file, options.certificate_chain_pem,
                                    "certificate chain", "certificate_chain_file",
                                    "certificate_chain_pem");
        auto const key = read_pem(options.private_key_file, options.private_key_pem,
                                  "private key", "private_key_file", "private_key_pem");
        auto const leaf = leaf_certificate(chain);
        auto const pkey = private_key(key, options.private_key_password);
        if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
            ERR_clear_error();
            throw_tls(key.name + " does not match the certificate in " + chain.name +
                      "; give the key the certificate was issued for");
        }

        error_code ec;
        context_.use_certificate_chain(net::buffer(chain.text), ec);
        if (ec)
            throw_tls("cannot use the certificate chain in " + chain.name + ": " + ec.message());
        if (SSL_CTX_use_PrivateKey(context_.native_handle(), pkey.get()) != 1)
            throw_tls("cannot use " + key.name + ": " + openssl_reason());
        SSL_CTX_set_min_proto_version(context_.native_handle(),
                                      options.minimum_version == tls_version::tls_1_3
                                          ? TLS1_3_VERSION
                                          : TLS1_2_VERSION);
        context_.set_options(net::ssl::context::default_workarounds |
                             net::ssl::context::single_dh_use);
    }

    task<void> serve(tcp_socket socket, server_state& server,
                     worker& w) const override
    {
        ssl_stream stream(tcp_stream(std::move(socket)), context_);
        auto& tcp = beast::get_lowest_layer(stream);
        send_without_delay(tcp);
        if (!co_await handshake(stream, server, w))
            co_return; // the stream's destructor closes the socket
        co_await serve_http(tls_transport(std::move(stream)), server, w);
    }

private:
    // Whatever arrives on a TLS port that is not TLS (a plain HTTP request,
    // garbage, a port scan) fails here and is dropped without an answer.
    static task<bool> handshake(ssl_stream& stream, server_state& server, worker& w)
    {
        auto& tcp = beast::get_lowest_layer(stream);
        handshake_registration registration{w, &tcp};
        tcp.expires_after(server.options.handshake_timeout);
        auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, use_tuple);
        if (ec) {
            server.options.log.write(log_level::info, log_category::access,
                                     "TLS handshake failed: " + ec.message());
            co_return false;
        }
        co_return true;
    }

    // OpenSSL's SSL_CTX is safe to share between threads once set up; Asio's
    // stream wants a non-const reference to make each connection's SSL.
    mutable net::ssl::context context_{net::ssl::context::tls_server};
};

} // namespace detail

MALLARD_DECL std::shared_ptr<tls_context const> load_tls(tls_options const& options)
{
    return std::make_shared<detail::openssl_tls_context const>(options);
}

} // namespace mallard

#endif
