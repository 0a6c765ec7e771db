// SPDX-License-Identifier: BSL-1.0
/// @file
/// Groups across processes through Redis (CMake target mallard::redis).
#ifndef MALLARD_REDIS_HPP
#define MALLARD_REDIS_HPP

// Groups across processes through Redis pub/sub. Link with the CMake target
// mallard::redis (hiredis); <mallard/mallard.hpp> does not include this.

#include <mallard/backplane.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/redis_options.hpp>

#include <memory>
#include <string_view>

namespace mallard {

/** A backplane over Redis pub/sub, for `server_options::backplane`: several
    server processes, one set of groups.

    Group G travels on the channel `channel_prefix + G`. A server subscribes
    to a group's channel while it has local members of the group, and
    publishes every group message to it. Local members get a publish at once,
    without waiting for Redis; other servers get it through Redis, and each
    server skips its own messages coming back.

    @par Guarantees
    - At most once: a message reaches each member once or not at all.
    - One publisher's messages arrive in the order it published them, on every
      server (one connection carries them to Redis; Redis keeps their order).
    - Payloads are carried byte for byte, text or binary as published.

    @par When Redis is unreachable
    Local traffic goes on untouched: nothing on a server thread waits for
    Redis. Publishes reach local members only; their copies for other servers
    are dropped, not replayed later, and counted (`server_stats::backplane_dropped`).
    The links reconnect with backoff (`reconnect_min` doubling to
    `reconnect_max`), resubscribe every group that still has local members,
    and log the outage and how many publishes it cost. Each link PINGs
    Redis every `ping_interval`; one that hears nothing for `ping_timeout`
    after a PING is treated as broken (a stopped Redis, a vanished host).
    Publishes made before
    the first connection succeeds wait for it (up to `max_buffered_bytes`).

    @par Example
    @code
    #include <mallard/redis.hpp>   // CMake: target_link_libraries(app PRIVATE mallard::redis)

    mallard::server_options options{.port = 8080};
    options.backplane = mallard::make_redis_backplane("redis://127.0.0.1:6379");
    @endcode

    @par Threads
    All I/O runs on one of the server's event loops (the one the server lends
    it in `start`); the other methods may be called from any thread and only
    post to it.

    @throws std::invalid_argument naming a field of `options` that cannot work.
*/
MALLARD_DECL std::shared_ptr<backplane> make_redis_backplane(redis_options options);

/** A Redis backplane from `redis://[[user]:password@]host[:port][/database]`.

    @throws std::invalid_argument naming what is wrong in `url`.
*/
MALLARD_DECL std::shared_ptr<backplane> make_redis_backplane(std::string_view url);

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/redis.ipp>
#endif

#endif
