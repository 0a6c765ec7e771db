// SPDX-License-Identifier: BSL-1.0
/// @file
/// How the Redis backplane connects and recovers.
#ifndef MALLARD_REDIS_OPTIONS_HPP
#define MALLARD_REDIS_OPTIONS_HPP

#include <boost/url/parse.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mallard {

/** Where and how a `redis_backplane` reaches Redis.

    Usually made from a URL with `redis_options::from_url`; the other fields
    keep their defaults or are set afterwards.

    @code
    auto opts = mallard::redis_options::from_url("redis://:secret@10.0.0.5:6379/0");
    opts.channel_prefix = "chat-prod:";
    @endcode
*/
struct redis_options {
    /// Host name or address of the Redis server.
    std::string host = "127.0.0.1";
    /// Its TCP port.
    std::uint16_t port = 6379;
    /// Database to SELECT. Redis pub/sub channels are shared by all
    /// databases: separate deployments on one Redis by `channel_prefix`.
    unsigned database = 0;
    /// ACL user name (Redis 6+); empty: `AUTH password` alone.
    std::string username;
    /// Password; empty: no `AUTH`.
    std::string password;
    /// Channel of group G: prefix + G.
    std::string channel_prefix = "mallard:";
    /// Bounds connecting and each answer of the handshake (AUTH, SELECT, PING).
    std::chrono::milliseconds connect_timeout{5000};
    /// First wait before reconnecting after a failure; doubles on each
    /// failure in a row, up to `reconnect_max`.
    std::chrono::milliseconds reconnect_min{100};
    /// The longest wait between reconnection attempts.
    std::chrono::milliseconds reconnect_max{2000};
    /// Each link sends a PING this often; Redis answers every command in
    /// order, so a link that has heard nothing since its PING for
    /// `ping_timeout` is broken (Redis stopped, or a host gone without FIN or
    /// RST, which TCP keepalive would notice only after minutes): it is
    /// logged, cut and reconnected, and its waiting publishes are dropped
    /// like those of any broken link.
    std::chrono::milliseconds ping_interval{1000};
    /// How long a link may hear nothing after its PING before it is cut;
    /// see `ping_interval`.
    std::chrono::milliseconds ping_timeout{3000};
    /// For groups with presence: each server renews a key saying it is alive
    /// this often (it expires after three times as long) and clears, from
    /// the presence lists of its groups, the members of servers whose key
    /// has expired. So the members of a server that dies without a goodbye
    /// leave every list within four times this.
    std::chrono::milliseconds presence_heartbeat{1000};
    /// Publishes waiting to be written to Redis, in bytes. A publish that
    /// would go beyond this (Redis slower than the publishers) is not carried
    /// to other servers, and counted as dropped.
    std::size_t max_buffered_bytes = std::size_t{16} << 20;

    /** Parses `redis://[[user]:password@]host[:port][/database]`.

        User and password may be percent-encoded.
        @throws std::invalid_argument naming the part that is wrong.
    */
    static redis_options from_url(std::string_view url)
    {
        auto fail = [url](std::string const& what) {
            return std::invalid_argument("mallard::redis_options: URL \"" + std::string(url) +
                                         "\": " + what);
        };
        auto parsed = boost::urls::parse_uri(url);
        if (!parsed)
            throw fail("not a URL; expected redis://[[user]:password@]host[:port][/database]");
        auto const& u = *parsed;
        if (u.scheme() != "redis")
            throw fail("the scheme must be redis:// (got \"" + std::string(u.scheme()) +
                       "\"; rediss:// with TLS is not supported)");
        redis_options options;
        options.host = std::string(u.encoded_host().decode());
        if (u.host_type() == boost::urls::host_type::ipv6)
            options.host = std::string(u.encoded_host_address().decode());
        if (options.host.empty())
            throw fail("the host is missing, e.g. redis://127.0.0.1:6379");
        if (u.has_port()) {
            auto const digits = std::string(u.port()); // only digits, by the URL grammar
            auto const port = digits.empty() || digits.size() > 5 ? 0 : std::stoul(digits);
            if (port == 0 || port > 65535)
                throw fail("the port must be a number from 1 to 65535");
            options.port = static_cast<std::uint16_t>(port);
        }
        auto path = std::string_view(u.encoded_path());
        if (!path.empty() && path != "/") {
            auto const digits = path.substr(1);
            if (digits.size() > 5 || digits.find_first_not_of("0123456789") != digits.npos)
                throw fail("the database (the path) must be a number, e.g. redis://host:6379/0");
            options.database = static_cast<unsigned>(std::stoul(std::string(digits)));
        }
        if (u.has_userinfo()) {
            options.username = std::string(u.encoded_user().decode());
            options.password = std::string(u.encoded_password().decode());
            if (options.password.empty())
                throw fail("a user without a password; write redis://user:password@host or "
                           "redis://:password@host");
        }
        if (u.has_query() || u.has_fragment())
            throw fail("query and fragment are not understood; set redis_options fields instead");
        return options;
    }
};

namespace detail {

/// Throws `std::invalid_argument` naming the first field of `options` that
/// cannot work.
inline void check_redis_options(redis_options const& options)
{
    auto fail = [](char const* field, char const* rule) {
        throw std::invalid_argument(std::string("mallard::redis_options: ") + field + " " + rule);
    };
    if (options.host.empty())
        fail("host", "is empty");
    if (options.port == 0)
        fail("port", "must be from 1 to 65535");
    if (!options.username.empty() && options.password.empty())
        fail("username", "is set but password is empty");
    if (options.connect_timeout <= std::chrono::milliseconds::zero())
        fail("connect_timeout", "must be positive");
    if (options.reconnect_min <= std::chrono::milliseconds::zero())
        fail("reconnect_min", "must be positive");
    if (options.reconnect_max < options.reconnect_min)
        fail("reconnect_max", "must be at least reconnect_min");
    if (options.ping_interval <= std::chrono::milliseconds::zero())
        fail("ping_interval", "must be positive");
    if (options.ping_timeout <= std::chrono::milliseconds::zero())
        fail("ping_timeout", "must be positive");
    if (options.presence_heartbeat <= std::chrono::milliseconds::zero())
        fail("presence_heartbeat", "must be positive");
    if (options.max_buffered_bytes == 0)
        fail("max_buffered_bytes", "must be positive");
}

} // namespace detail
} // namespace mallard

#endif
