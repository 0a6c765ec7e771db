// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_SERVER_HPP
#define MALLARD_SERVER_HPP

#include <mallard/detail/config.hpp>
#include <mallard/detail/fanout.hpp>
#include <mallard/detail/listener.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/options.hpp>
#include <mallard/router.hpp>
#include <mallard/server_stats.hpp>
#include <mallard/tls_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <csignal>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mallard {

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
    server(server_options options, router routes)
    {
        detail::check_server_options(options);
        if (routes.routes().empty())
            throw std::invalid_argument(
                "mallard::server: the router has no routes; add one with mallard::path");
        state_ = std::make_unique<detail::server_state>();
        state_->options = std::move(options);
        state_->routes = std::move(routes);
        for (unsigned i = 0; i < state_->options.threads; ++i)
            workers_.push_back(std::make_unique<detail::worker>(i));
        auto carrier = state_->options.backplane;
        if (!carrier)
            carrier = std::make_shared<in_process_backplane>();
        fanout_.emplace(workers_, std::move(carrier), state_->options.log);
        state_->groups = &*fanout_;
        // The backplane's I/O runs on a worker's loop, so it must end for the
        // loops to end: once every connection is gone (on_close handlers may
        // still publish until then).
        for (auto& w : workers_)
            w->on_drained = [this] {
                if (drained_workers_.fetch_add(1) + 1 == workers_.size())
                    fanout_->stop_backplane();
            };
        if (!state_->options.static_directory.empty())
            state_->static_root = std::filesystem::canonical(state_->options.static_directory);
        auto const& opts = state_->options;
        open_listener(opts.port, opts.tls.get());
        if (opts.plain_port)
            open_listener(*opts.plain_port, nullptr);
    }

    server(server const&) = delete;
    server& operator=(server const&) = delete;

    /// Stops and waits for `run()` on other threads to return.
    ~server()
    {
        stop();
        std::unique_lock lock(run_mutex_);
    }

    /// The port `options.port` asked for (wss:// when `options.tls` is set);
    /// the actual one when it was 0.
    unsigned short port() const noexcept { return listeners_.front().port; }

    /// The ws:// port beside a TLS one (`options.plain_port`); 0 when none.
    unsigned short plain_port() const noexcept
    {
        return listeners_.size() > 1 ? listeners_.back().port : 0;
    }

    /// Open WebSocket connections on all threads.
    std::size_t connection_count() const noexcept
    {
        std::size_t total = 0;
        for (auto const& w : workers_)
            total += w->open_count.load(std::memory_order_relaxed);
        return total;
    }

    /** Sends a message to every member of `group`, from any thread, also
        one that is not a server thread. Never waits, never throws.

        @return the number of members on this server when it was published.
    */
    std::size_t publish(std::string const& group, std::string message, opcode op = opcode::text)
    {
        return fanout_->publish(group, std::make_shared<std::string const>(std::move(message)), op,
                                0);
    }

    /// The number of members of `group` on this server; any thread.
    std::size_t group_size(std::string const& group) const { return fanout_->size(group); }

    /// The server's counters; any thread.
    server_stats stats() const
    {
        server_stats total;
        for (auto const& w : workers_) {
            w->stats.add_to(total);
            total.connections_open += w->open_count.load(std::memory_order_relaxed);
        }
        total.backplane_dropped = fanout_->backplane_dropped();
        return total;
    }

    /** Serves until `stop()` (or SIGINT/SIGTERM when `handle_signals`), then
        closes every connection gracefully and returns.

        Runs one event loop in the calling thread and the others in threads of
        its own. A server runs once.
        @throws std::logic_error when called a second time.
    */
    void run()
    {
        std::unique_lock lock(run_mutex_);
        if (std::exchange(ran_, true))
            throw std::logic_error("mallard::server::run: a server runs once; make a new one");
        auto& first = *workers_.front();
        if (state_->options.handle_signals) {
            signals_.emplace(first.ioc, SIGINT, SIGTERM);
            signals_->async_wait([this](error_code ec, int) {
                if (!ec)
                    stop();
            });
        }
        for (auto& listener : listeners_)
            net::co_spawn(first.ioc, accept_loop(listener), [this](std::exception_ptr e) {
                if (e)
                    log_error("the accept loop", e);
            });

        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < workers_.size(); ++i)
            threads.emplace_back([this, i] { run_worker(*workers_[i]); });
        run_worker(first);
        for (auto& t : threads)
            t.join();
        state_->options.log.write(log_level::notice, log_category::diagnostic,
                                  "server stopped; " + stats().summary());
    }

    /** Stops gracefully: stop accepting, close every connection with 1001,
        wait up to `shutdown_grace` for the closing handshakes and every
        `on_close`, cut what remains, and let `run()` return.

        Any thread, any number of times; before `run()` it makes `run()`
        return at once.
    */
    void stop()
    {
        if (stop_requested_.exchange(true))
            return;
        // Queued on each worker's loop: it runs at once when the server is
        // running, and first thing in run() when stop() came before it.
        begin_shutdown();
    }

private:
    // One listening socket; `tls` (not owned) serves its connections when set.
    struct listener {
        net::ip::tcp::acceptor acceptor;
        tls_context const* tls;
        unsigned short port;
    };

    void open_listener(unsigned short port, tls_context const* tls)
    {
        auto const& options = state_->options;
        error_code ec;
        auto const address = net::ip::make_address(options.address, ec);
        if (ec)
            throw std::invalid_argument("mallard::server_options: address \"" + options.address +
                                        "\" is not an IPv4 or IPv6 address");
        net::ip::tcp::endpoint const endpoint(address, port);
        net::ip::tcp::acceptor acceptor(workers_.front()->ioc);
        auto fail = [&](char const* what, char const* hint = "") {
            throw std::system_error(ec, "mallard::server: cannot " + std::string(what) + " " +
                                            options.address + ":" + std::to_string(port) + hint);
        };
        if (acceptor.open(endpoint.protocol(), ec))
            fail("open a socket for");
        acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (acceptor.bind(endpoint, ec))
            fail("listen on", " (is another process using the port?)");
        if (acceptor.listen(net::socket_base::max_listen_connections, ec))
            fail("listen on");
        auto const bound = acceptor.local_endpoint().port();
        listeners_.push_back(listener{std::move(acceptor), tls, bound});
    }

    task<void> accept_loop(listener& from)
    {
        auto& acceptor = from.acceptor;
        std::size_t next = 0;
        net::steady_timer backoff(workers_.front()->ioc);
        while (acceptor.is_open()) {
            auto& w = *workers_[next];
            next = (next + 1) % workers_.size();
            auto [ec, socket] = co_await acceptor.async_accept(w.ioc, detail::use_tuple);
            if (ec == net::error::operation_aborted || !acceptor.is_open())
                break;
            if (ec) { // out of file descriptors, most likely: pause, do not spin
                state_->options.log.write(log_level::error, log_category::diagnostic,
                                          "accept failed: " + ec.message());
                backoff.expires_after(std::chrono::milliseconds(100));
                co_await backoff.async_wait(detail::use_tuple);
                continue;
            }
            net::co_spawn(w.ioc, serve(std::move(socket), w, from.tls),
                          [this](std::exception_ptr e) {
                              if (e)
                                  log_error("a connection", e);
                          });
        }
    }

    task<void> serve(net::ip::tcp::socket socket, detail::worker& w, tls_context const* tls)
    {
        if (tls)
            co_await tls->serve(std::move(socket), *state_, w);
        else
            co_await detail::serve_connection(std::move(socket), *state_, w);
    }

    void begin_shutdown()
    {
        net::post(workers_.front()->ioc, [this] {
            error_code ignored;
            for (auto& listener : listeners_)
                listener.acceptor.close(ignored);
            if (signals_)
                signals_->cancel(ignored);
        });
        for (auto& w : workers_)
            net::post(w->ioc, [this, &w = *w] { shutdown_worker(w); });
    }

    // On the worker's thread: ask every connection to close, then bound the wait.
    void shutdown_worker(detail::worker& w)
    {
        w.stopping = true;
        for (auto* session : std::vector(w.sessions.begin(), w.sessions.end()))
            session->close(close_code::going_away, "server shutdown", close_cause::shutdown);
        for (auto* stream : w.handshakes)
            stream->close(); // its read ends with operation_aborted; no answer is owed
        w.shutdown_timer->expires_after(state_->options.shutdown_grace);
        w.shutdown_timer->async_wait([this, &w](error_code ec) {
            if (ec)
                return;
            for (auto* session : std::vector(w.sessions.begin(), w.sessions.end()))
                session->abort();
            // on_close handlers get one more grace period; then the loop stops.
            w.shutdown_timer->expires_after(state_->options.shutdown_grace);
            w.shutdown_timer->async_wait([this, &w](error_code ec2) {
                if (ec2)
                    return;
                state_->options.log.write(log_level::error, log_category::diagnostic,
                                          "on_close handlers still running after shutdown "
                                          "grace; stopping their thread");
                fanout_->stop_backplane(); // or worker 0's loop would wait for it
                w.ioc.stop();
            });
        });
        w.maybe_finish();
    }

    void run_worker(detail::worker& w)
    {
        for (;;) {
            try {
                w.ioc.run();
                return;
            } catch (...) {
                log_error("an event loop handler", std::current_exception());
            }
        }
    }

    void log_error(char const* where, std::exception_ptr e) const
    {
        state_->options.log.write(log_level::error, log_category::diagnostic,
                                  std::string(where) + " failed: " + detail::describe(e));
    }

    std::unique_ptr<detail::server_state> state_;
    std::vector<std::unique_ptr<detail::worker>> workers_;
    std::optional<detail::fanout> fanout_;
    std::deque<listener> listeners_; // stable addresses: accept loops refer to them
    std::optional<net::signal_set> signals_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::size_t> drained_workers_{0};
    std::mutex run_mutex_;
    bool ran_ = false;
};

} // namespace mallard

#endif
