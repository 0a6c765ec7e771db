// SPDX-License-Identifier: BSL-1.0
/// @file
/// The server: listens, runs the event loops, serves the router's views.
#ifndef MALLARD_SERVER_HPP
#define MALLARD_SERVER_HPP

#include <mallard/detail/config.hpp>
#include <mallard/group_history.hpp>
#include <mallard/opcode.hpp>
#include <mallard/options.hpp>
#include <mallard/presence.hpp>
#include <mallard/router.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/server_stats.hpp>
#include <mallard/task.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace mallard {

namespace detail {
class server_impl;
} // namespace detail

/** A WebSocket server: listens, routes upgrades to views, runs their connections.

    The constructor does all setup and throws on any mistake, so a server
    that was constructed will run. Each of `options.threads` threads runs
    its own event loop; connections are spread over them round-robin and
    stay on one for their life.

    @par Example
    @code
    mallard::server srv{{.port = 8080}, urls};
    srv.run();   // until stop(), SIGINT or SIGTERM; then a graceful close
    @endcode

    @par Thread safety
    `stop()`, `port()` and `connection_count()` may be called from any thread.
*/
class server {
public:
    /** Binds the listening socket.

        @throws std::invalid_argument for an invalid option, a bad address
        or a router without routes.
        @throws std::system_error when the address cannot be bound (port in use).
    */
    MALLARD_DECL server(server_options options, router routes);

    server(server const&) = delete;
    server& operator=(server const&) = delete;

    /// Stops and waits for `run()` on other threads to return.
    MALLARD_DECL ~server();

    /// The port `options.port` asked for (wss:// when `options.tls` is set);
    /// the actual one when it was 0.
    MALLARD_DECL unsigned short port() const noexcept;

    /// The ws:// port beside a TLS one (`options.plain_port`); 0 when none.
    MALLARD_DECL unsigned short plain_port() const noexcept;

    /// The operators' port (`options.admin_port`); 0 when none.
    MALLARD_DECL unsigned short admin_port() const noexcept;

    /// Open WebSocket connections on all threads.
    MALLARD_DECL std::size_t connection_count() const noexcept;

    /** Sends a message to every member of `group`, from any thread, also
        one that is not a server thread. Never waits, never throws.

        @return the number of members on this server when it was published.
    */
    MALLARD_DECL std::size_t publish(std::string const& group, std::string message,
                                     opcode op = opcode::text);

    /** Runs `t` on one of the server's event loops (each call the next
        loop, in turn) until it finishes or the server stops: at `stop()` it
        is cancelled (its pending `co_await` throws `operation_aborted`), and
        a task spawned after that never starts. For work that belongs to the
        server rather than to one connection, such as a game's tick or a
        feed that publishes to a group (`websocket_view::spawn` is scoped to
        its connection). Any thread; before `run()` too, when it starts with
        the loops. An exception escaping the task is logged; the server goes
        on. Like a view's callbacks, a task must not block its loop, and
        one that catches its cancellation and goes on keeps `run()` from
        returning.

        @par Example
        @code
        srv.spawn([](mallard::server& s) -> mallard::task<> {
            boost::asio::steady_timer tick(co_await boost::asio::this_coro::executor);
            for (;;) {
                tick.expires_after(std::chrono::milliseconds{50});
                co_await tick.async_wait(boost::asio::use_awaitable);
                s.publish("room:1", "tick");
            }
        }(srv));
        @endcode
    */
    MALLARD_DECL void spawn(task<> t);

    /// The number of members of `group` on this server; any thread.
    MALLARD_DECL std::size_t group_size(std::string const& group) const;

    /// The members of a group with presence (`group_policy::presence`);
    /// any thread. Empty for other groups. In the order this process
    /// learned of them: in one process, the order of joining.
    MALLARD_DECL std::vector<presence_member> presence(std::string const& group) const;

    /** The history of a group with history (`group_policy::history_size`);
        empty for other groups. Any thread; with a backplane that keeps
        histories (Redis) it waits for the read, so call it from a thread of
        your own, not from a view (views have `history` to `co_await`).
        @throws std::logic_error when called on one of the server's threads
        while the backplane keeps histories.
        @throws std::runtime_error when the backplane has not answered within
        10 s (the server is not running, or Redis is slower than that).
    */
    MALLARD_DECL group_history history(std::string const& group) const;

    /// The server's counters; any thread.
    MALLARD_DECL server_stats stats() const;

    /** Everything the server counts, per route: what `metrics_path` serves
        (`to_prometheus` writes it in that format). Any thread, a server
        thread too: it takes no lock that a connection's path takes and
        waits for no event loop.
    */
    MALLARD_DECL server_metrics metrics() const;

    /** Serves until `stop()` (or SIGINT/SIGTERM when `handle_signals`), then
        closes every connection gracefully and returns.

        Runs one event loop in the calling thread and the others in threads of
        its own. A server runs once.
        @throws std::logic_error when called a second time.
    */
    MALLARD_DECL void run();

    /** Stops gracefully: stop accepting, close every connection with
        `options.drain_close_code` (1001 by default),
        wait up to `shutdown_grace` for the closing handshakes and every
        `on_close`, cut what remains, and let `run()` return.

        Any thread, any number of times; before `run()` it makes `run()`
        return at once. With `options.drain_window` set, the connections are
        closed spread over it first: see `drain`.
    */
    MALLARD_DECL void stop();

    /** Stops gracefully as `stop()` does, but first closes the open
        connections spread evenly over `window` (with
        `options.drain_close_code`), so that their clients do not all
        reconnect at once. During the window the listener stays open: new
        upgrades get 503 with Retry-After, `readiness_path` 503 and
        `health_path` 200. Then `shutdown_grace` bounds the closing
        handshakes of what is left. `stop()` and SIGTERM drain over
        `options.drain_window`. Any thread; only the first stop counts.

        @throws std::invalid_argument for a negative window.
    */
    MALLARD_DECL void drain(std::chrono::milliseconds window);

private:
    std::unique_ptr<detail::server_impl> impl_;
};

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/server.ipp>
#endif

#endif
