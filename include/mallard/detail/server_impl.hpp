// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SERVER_IMPL_HPP
#define MALLARD_DETAIL_SERVER_IMPL_HPP

// What stands behind mallard::server: the listening sockets and their accept
// loops, the workers (one event loop and thread each), the groups, and the
// graceful shutdown. server.hpp shows only the interface; this is compiled
// once in separate mode (see <mallard/src.hpp>).

#include <mallard/detail/config.hpp>
#include <mallard/detail/fanout.hpp>
#include <mallard/detail/listener.hpp>
#include <mallard/detail/log_throttle.hpp>
#include <mallard/detail/process_figures.hpp>
#include <mallard/detail/server_state.hpp>
#include <mallard/detail/tls_acceptor.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/options.hpp>
#include <mallard/router.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/server_stats.hpp>
#include <mallard/task.hpp>

#include <boost/url/parse.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <deque>
#include <list>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mallard::detail {

class server_impl {
public:
    server_impl(server_options options, router routes)
    {
        check_server_options(options);
        if (routes.routes().empty())
            throw std::invalid_argument(
                "mallard::server: the router has no routes; add one with mallard::path");
        state_ = std::make_unique<server_state>();
        state_->options = std::move(options);
        state_->routes = std::move(routes);
        state_->trusted_proxies = trusted_networks(state_->options.trusted_proxies);
        admission_.emplace(state_->options.max_connections,
                           state_->options.max_connections_per_address);
        if (state_->options.max_connections != 0 || state_->options.max_connections_per_address != 0)
            state_->admission = &*admission_;
        auto const tick = deadline_tick(state_->routes, state_->options.handshake_timeout);
        auto const route_count = state_->routes.routes().size();
        for (unsigned i = 0; i < state_->options.threads; ++i) {
            workers_.push_back(std::make_unique<worker>(i, tick, route_count));
            if (auto const budget = state_->options.memory_budget; budget != 0)
                workers_.back()->watch_memory(std::max<std::size_t>(budget / state_->options.threads, 1),
                                              state_->options.memory_budget_timeout);
            workers_.back()->start_looking();
        }
        server_tasks_.resize(workers_.size());
        check_operator_paths(state_->options, state_->routes);
        state_->read_metrics = [this] { return metrics(); };
        auto carrier = state_->options.backplane;
        if (!carrier)
            carrier = std::make_shared<in_process_backplane>();
        fanout_.emplace(workers_, std::move(carrier), state_->options.log, state_->options.groups);
        state_->groups = &*fanout_;
        // The backplane's I/O runs on a worker's loop, so it must end for the
        // loops to end: once every connection is gone (on_close handlers may
        // still publish until then).
        for (auto& w : workers_)
            w->when_drained([this] {
                if (drained_workers_.fetch_add(1) + 1 == workers_.size())
                    fanout_->stop_backplane();
            });
        if (!state_->options.static_directory.empty())
            state_->static_root = std::filesystem::canonical(state_->options.static_directory);
        auto const& opts = state_->options;
        open_listener(opts.address, opts.port, tls_acceptor_of(opts), listener_kind::public_port);
        if (opts.plain_port)
            plain_ = &open_listener(opts.address, *opts.plain_port, nullptr,
                                    listener_kind::public_port);
        if (opts.admin_port)
            admin_ = &open_listener(opts.admin_address, *opts.admin_port, nullptr,
                                    listener_kind::admin_port);
    }

    server_impl(server_impl const&) = delete;
    server_impl& operator=(server_impl const&) = delete;

    ~server_impl()
    {
        stop();
        std::unique_lock lock(run_mutex_);
    }

    /// The port `options.port` asked for (wss:// when `options.tls` is set);
    /// the actual one when it was 0.
    unsigned short port() const noexcept { return listeners_.front().port; }

    /// The ws:// port beside a TLS one (`options.plain_port`); 0 when none.
    unsigned short plain_port() const noexcept { return plain_ ? plain_->port : 0; }

    /// The operators' port (`options.admin_port`); 0 when none.
    unsigned short admin_port() const noexcept { return admin_ ? admin_->port : 0; }

    /// Open WebSocket connections on all threads.
    std::size_t connection_count() const noexcept
    {
        std::size_t total = 0;
        for (auto const& w : workers_)
            total += w->open_connections();
        return total;
    }

    /// Any thread: runs `t` on one of the loops, in turn, until it finishes or
    /// the server stops.
    void spawn(task<void> t)
    {
        auto const index = next_task_loop_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
        net::post(workers_[index]->loop(),
                  [this, index, t = std::move(t)]() mutable { start_task(index, std::move(t)); });
    }

    std::size_t publish(std::string const& group, std::string message, opcode op = opcode::text)
    {
        server_publishes_.fetch_add(1, std::memory_order_relaxed);
        return fanout_->publish(group, std::make_shared<std::string const>(std::move(message)), op,
                                0);
    }

    /// The number of members of `group` on this server; any thread.
    std::size_t group_size(std::string const& group) const { return fanout_->size(group); }

    /// The server's groups; any thread.
    group_hub& groups() { return *fanout_; }

    /// A group's history; any thread but the server's own when the
    /// backplane keeps histories (see server::history).
    group_history history(std::string const& group)
    {
        if (fanout_->reads_elsewhere())
            for (auto const& w : workers_)
                if (w->loop().get_executor().running_in_this_thread())
                    throw std::logic_error("mallard::server::history: called on a server thread "
                                           "while the backplane keeps the histories; from a view, "
                                           "co_await history(group)");
        // Shared: a read that outlives the wait below still has its promise.
        auto read = std::make_shared<std::promise<group_history>>();
        auto done = read->get_future();
        fanout_->read_history(group, [read](group_history h) { read->set_value(std::move(h)); });
        if (done.wait_for(std::chrono::seconds{10}) != std::future_status::ready)
            throw std::runtime_error("mallard::server::history: the backplane did not answer "
                                     "within 10 s; is the server running?");
        return done.get();
    }

    /// The server's counters; any thread.
    server_stats stats() const
    {
        auto const all = counted(); // no /proc reading for a summary
        server_stats total;
        for (auto const& w : workers_)
            total.connections_open += w->open_connections();
        for (auto const& route : all.routes) {
            total.connections_opened += route.connections_opened;
            total.messages_in += route.messages_in;
            total.bytes_in += route.bytes_in;
            total.messages_out += route.messages_out;
            total.bytes_out += route.bytes_out;
            total.messages_dropped += route.messages_dropped;
            for (auto const& close : route.closes)
                total.closes_by_code[close.code] += close.count;
        }
        total.memory_held = all.memory_held;
        total.connections_paused = all.connections_paused;
        total.backplane_dropped = all.backplane.dropped;
        return total;
    }

    /// Everything the server counts; any thread, without stopping a loop:
    /// each worker's counters are atomics that only its thread writes.
    server_metrics metrics() const
    {
        auto all = counted();
        fanout_->count_groups(all);
        all.process = read_process_figures();
        return all;
    }

private:
    // What the workers, the admission limits and the backplane count.
    server_metrics counted() const
    {
        server_metrics all;
        auto const& routes = state_->routes.routes();
        all.routes.resize(routes.size());
        for (std::size_t i = 0; i < routes.size(); ++i) {
            auto& r = all.routes[i];
            r.route = routes[i].name().empty() ? routes[i].pattern() : routes[i].name();
            r.pattern = routes[i].pattern();
            r.slow_consumer = routes[i].limits().slow_consumer;
            r.rate_action = routes[i].limits().receive_rate.action;
        }
        for (auto const& w : workers_) {
            for (std::size_t i = 0; i < routes.size(); ++i)
                w->stats(i).add_to(all.routes[i]);
            w->http_stats().add_to(all);
            all.handshakes += w->handshakes();
            all.memory_held += w->memory_held();
            all.connections_paused += w->connections_paused();
        }
        all.server_publishes = server_publishes_.load(std::memory_order_relaxed);
        all.draining = draining_.load(std::memory_order_relaxed);
        all.refused_max_connections = admission_->refused_server_full();
        all.refused_max_connections_per_address = admission_->refused_address_full();
        all.backplane = fanout_->backplane_status();
        return all;
    }

public:

    // The deadline wheel's tick follows the smallest interval any route
    // asks for (a look every quarter of the send timeout while sending),
    // and the close deadline.
    static std::chrono::milliseconds deadline_tick(router const& routes,
                                                   std::chrono::milliseconds close_timeout)
    {
        auto tick = choose_tick({close_timeout});
        for (auto const& r : routes.routes()) {
            auto const& l = r.limits();
            tick = std::min(tick, choose_tick({l.receive_timeout, l.send_timeout / 4, l.ping_interval,
                                               l.max_lifetime, l.expiry_notice, l.pong_timeout}));
        }
        return tick;
    }

    void run()
    {
        std::unique_lock lock(run_mutex_);
        if (std::exchange(ran_, true))
            throw std::logic_error("mallard::server::run: a server runs once; make a new one");
        auto& first = *workers_.front();
        if (state_->options.handle_signals) {
            signals_.emplace(first.loop(), SIGINT, SIGTERM);
            signals_->async_wait([this](error_code ec, int) {
                if (!ec)
                    stop();
            });
        }
        for (auto& listener : listeners_)
            net::co_spawn(first.loop(), accept_loop(listener), [this](std::exception_ptr e) {
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

    void stop() { drain(state_->options.drain_window); }

    /// A graceful stop whose connections are closed spread over `window`;
    /// the listener stays open meanwhile, refusing upgrades with 503. Only
    /// the first stop or drain counts.
    void drain(std::chrono::milliseconds window)
    {
        if (window.count() < 0)
            throw std::invalid_argument("mallard::server::drain: the window must not be negative");
        if (stop_requested_.exchange(true))
            return;
        draining_.store(true, std::memory_order_relaxed);
        // Queued on each worker's loop: it runs at once when the server is
        // running, and first thing in run() when stop() came before it.
        if (window.count() == 0) {
            begin_shutdown();
            return;
        }
        for (auto& w : workers_)
            net::post(w->loop(), [this, &w = *w, window] { w.drain(window, stop_terms()); });
        net::post(workers_.front()->loop(), [this, window] {
            drain_timer_.emplace(workers_.front()->loop());
            drain_timer_->expires_after(window);
            drain_timer_->async_wait([this](error_code) { begin_shutdown(); });
        });
    }

private:
    // The paths the server answers itself must not be routes' paths: the
    // route would win, and the operator would scrape a WebSocket endpoint.
    static void check_operator_paths(server_options const& options, router const& routes)
    {
        for (auto const* path : {&options.metrics_path, &options.status_path}) {
            if (path->empty())
                continue;
            auto url = boost::urls::parse_origin_form(*path);
            if (!url || *path != url->path())
                throw std::invalid_argument("mallard::server_options: \"" + *path +
                                            "\" is not a path; write it as \"/metrics\"");
            std::vector<std::string> segments;
            for (auto segment : url->segments())
                segments.push_back(std::move(segment));
            path_params ignored;
            if (auto const* route = routes.match(segments, ignored))
                throw std::invalid_argument("mallard::server_options: \"" + *path +
                                            "\" is also the path of route \"" +
                                            route->pattern() + "\"; choose another");
        }
    }

    // What serves wss:// for these options: the context load_tls made.
    static tls_acceptor const* tls_acceptor_of(server_options const& options)
    {
        if (!options.tls)
            return nullptr;
        auto const* acceptor = dynamic_cast<tls_acceptor const*>(options.tls.get());
        if (!acceptor)
            throw std::invalid_argument(
                "mallard::server_options: tls must be a context made by mallard::load_tls");
        return acceptor;
    }

    // One listening socket; `tls` (not owned) serves its connections when set.
    struct listener {
        net::ip::tcp::acceptor acceptor;
        tls_acceptor const* tls;
        unsigned short port;
        listener_kind kind;
    };

    listener& open_listener(std::string const& address_text, unsigned short port,
                            tls_acceptor const* tls, listener_kind kind)
    {
        auto const& options = state_->options;
        error_code ec;
        auto const address = net::ip::make_address(address_text, ec);
        if (ec)
            throw std::invalid_argument(
                std::string("mallard::server_options: ") +
                (kind == listener_kind::admin_port ? "admin_address" : "address") + " \"" +
                address_text + "\" is not an IPv4 or IPv6 address");
        net::ip::tcp::endpoint const endpoint(address, port);
        net::ip::tcp::acceptor acceptor(workers_.front()->loop());
        auto fail = [&](char const* what, char const* hint = "") {
            throw std::system_error(ec, "mallard::server: cannot " + std::string(what) + " " +
                                            address_text + ":" + std::to_string(port) + hint);
        };
        if (acceptor.open(endpoint.protocol(), ec))
            fail("open a socket for");
        acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (options.reuse_port) {
            int const on = 1; // SO_REUSEPORT has no Asio option of its own
            if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
                ec.assign(errno, boost::system::system_category());
                fail("set SO_REUSEPORT on");
            }
        }
        if (acceptor.bind(endpoint, ec))
            fail("listen on", " (is another process using the port?)");
        if (acceptor.listen(net::socket_base::max_listen_connections, ec))
            fail("listen on");
        auto const bound = acceptor.local_endpoint().port();
        listeners_.push_back(listener{std::move(acceptor), tls, bound, kind});
        return listeners_.back();
    }

    task<void> accept_loop(listener& from)
    {
        auto& acceptor = from.acceptor;
        std::size_t next = 0;
        net::steady_timer backoff(workers_.front()->loop());
        log_throttle accept_errors(std::chrono::seconds{1});
        while (acceptor.is_open()) {
            auto& w = *workers_[next];
            next = (next + 1) % workers_.size();
            auto [ec, socket] = co_await acceptor.async_accept(w.loop(), use_tuple);
            if (ec == net::error::operation_aborted || !acceptor.is_open())
                break;
            if (ec) { // out of file descriptors, most likely: pause, do not spin
                if (auto const held = accept_errors.admit(log_throttle::clock::now()))
                    state_->options.log.write(
                        log_level::error, log_category::diagnostic,
                        "accept failed: " + ec.message() +
                            (*held ? " (and " + std::to_string(*held) +
                                         " times more since the last report)"
                                   : std::string()));
                backoff.expires_after(std::chrono::milliseconds(100));
                co_await backoff.async_wait(use_tuple);
                continue;
            }
            net::co_spawn(w.loop(), serve(std::move(socket), w, from.tls, from.kind),
                          [this](std::exception_ptr e) {
                              if (e)
                                  log_error("a connection", e);
                          });
        }
    }

    task<void> serve(tcp_socket socket, worker& w, tls_acceptor const* tls, listener_kind kind)
    {
        if (tls) {
            co_await tls->serve(std::move(socket), *state_, w);
            co_return;
        }
        // A plain (ws://) connection. Here and not in listener.hpp, which the
        // TLS translation unit includes: it must not instantiate the plain
        // session as well.
        tcp_stream stream(std::move(socket));
        send_without_delay(stream);
        co_await serve_http(std::move(stream), *state_, w, kind);
    }

    worker::stop_terms stop_terms() const
    {
        return {state_->options.drain_close_code, state_->options.drain_retry_after};
    }

    void begin_shutdown()
    {
        net::post(workers_.front()->loop(), [this] {
            error_code ignored;
            for (auto& listener : listeners_)
                listener.acceptor.close(ignored);
            if (signals_)
                signals_->cancel(ignored);
        });
        for (auto& w : workers_)
            net::post(w->loop(), [this, &w = *w] { shutdown_worker(w); });
    }

    // The server's own tasks on one loop; only that loop's thread touches them.
    struct loop_tasks {
        std::list<net::cancellation_signal> running;
        bool stopped = false; // the server is stopping: no new task starts
    };

    // On loop `index`'s thread.
    void start_task(std::size_t index, task<void> t)
    {
        auto& tasks = server_tasks_[index];
        if (tasks.stopped)
            return;
        auto const slot = tasks.running.emplace(tasks.running.end());
        net::co_spawn(workers_[index]->loop(), std::move(t),
                      net::bind_cancellation_slot(
                          slot->slot(), [this, index, slot](std::exception_ptr e) {
                              server_tasks_[index].running.erase(slot);
                              if (e && !stop_requested_.load(std::memory_order_relaxed))
                                  log_error("a task spawned on the server", e);
                          }));
    }

    // On the worker's thread: ask every connection to close, then bound the wait.
    void shutdown_worker(worker& w)
    {
        auto& tasks = server_tasks_[w.index()];
        tasks.stopped = true;
        // Emitting may end a task at once and erase its signal: step first.
        for (auto it = tasks.running.begin(); it != tasks.running.end();)
            (it++)->emit(net::cancellation_type::terminal);
        w.shut_down(state_->options.shutdown_grace, stop_terms(), [this] {
            state_->options.log.write(log_level::error, log_category::diagnostic,
                                      "on_close handlers still running after shutdown "
                                      "grace; stopping their thread");
            fanout_->stop_backplane(); // or worker 0's loop would wait for it
        });
    }

    void run_worker(worker& w)
    {
        for (;;) {
            try {
                w.loop().run();
                return;
            } catch (...) {
                log_error("an event loop handler", std::current_exception());
            }
        }
    }

    void log_error(char const* where, std::exception_ptr e) const
    {
        state_->options.log.write(log_level::error, log_category::diagnostic,
                                  std::string(where) + " failed: " + describe(e));
    }

    std::unique_ptr<server_state> state_;
    // Before the workers: connections destroyed with their loops give their
    // places back to it.
    std::optional<admission> admission_;
    // server::spawn's tasks, per loop. Before the workers: a task still
    // pending when its loop is destroyed refers to its cancellation signal.
    std::vector<loop_tasks> server_tasks_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::optional<fanout> fanout_;
    std::deque<listener> listeners_; // stable addresses: accept loops refer to them
    listener const* plain_ = nullptr; // among listeners_, when there are these
    listener const* admin_ = nullptr;
    std::optional<net::signal_set> signals_;
    std::optional<net::steady_timer> drain_timer_; // the drain window's end, on the first loop
    std::atomic<bool> draining_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::size_t> drained_workers_{0};
    std::atomic<std::uint64_t> server_publishes_{0}; // server::publish, from any thread
    std::atomic<std::size_t> next_task_loop_{0};
    std::mutex run_mutex_;
    bool ran_ = false;
};

} // namespace mallard::detail

#endif
