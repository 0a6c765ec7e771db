// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_BACKPLANE_HPP
#define MALLARD_DETAIL_REDIS_BACKPLANE_HPP

// The backplane over Redis pub/sub that mallard::make_redis_backplane makes
// (<mallard/redis.hpp> says what it guarantees): two links, one publishing
// and one subscribed, on one of the server's event loops.

#include <mallard/backplane.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/redis/connection.hpp>
#include <mallard/detail/redis/envelope.hpp>
#include <mallard/detail/redis/history_store.hpp>
#include <mallard/detail/redis/presence_store.hpp>
#include <mallard/redis_options.hpp>
#include <mallard/task.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mallard::detail {

class redis_backplane final : public backplane,
                              public std::enable_shared_from_this<redis_backplane> {
public:
    /// @throws std::invalid_argument naming a field of `options` that cannot work.
    explicit redis_backplane(redis_options options) : options_(std::move(options))
    {
        detail::check_redis_options(options_);
        std::random_device random;
        for (auto& byte : node_)
            byte = static_cast<char>(random());
    }

    void start(host server) override
    {
        auto self = weak_from_this().lock();
        if (!self)
            throw std::logic_error("mallard::redis_backplane: make it with "
                                   "mallard::make_redis_backplane (it must be owned by a "
                                   "std::shared_ptr)");
        host_ = std::move(server);
        // The links' sockets and timers must go before the event loop they
        // belong to, but the server's options keep this object for longer.
        auto& loop = net::query(host_.executor,
                                net::execution::context_as<net::execution_context&>);
        net::use_service<detail::before_loop_ends>(loop).add(
            [weak = weak_from_this()] {
                if (auto alive = weak.lock())
                    alive->release_links();
            });
        publisher_.emplace(host_.executor, link_role::publisher);
        subscriber_.emplace(host_.executor, link_role::subscriber);
        heartbeat_.emplace(host_.executor);
        for (auto* l : {&*publisher_, &*subscriber_})
            net::co_spawn(host_.executor, keep_linked(self, *l), net::detached);
        net::co_spawn(host_.executor, beat(self), net::detached);
    }

    void publish(group_message message) override
    {
        if (message.history_size != 0) {
            net::post(host_.executor, [self = shared_from_this(), m = std::move(message)]() mutable {
                self->publish_numbered(std::move(m));
            });
            return;
        }
        host_.deliver(message); // local members first, and never behind Redis
        std::string command;
        detail::append_redis_command(
            command, {"PUBLISH", channel_of(message.group),
                      detail::seal_envelope(node_, message.op, *message.payload)});
        net::post(host_.executor, [self = shared_from_this(), command = std::move(command)] {
            self->queue_publish(command);
        });
    }

    bool keeps_history() const noexcept override { return true; }

    void read_history(history_request request, std::function<void(join_result)> done) override
    {
        net::post(host_.executor, [self = shared_from_this(), request = std::move(request),
                                   done = std::move(done)]() mutable {
            self->start_read({std::move(request), std::move(done)});
        });
    }

    bool keeps_presence() const noexcept override { return true; }

    void publish_presence(presence_event const& event) override
    {
        net::post(host_.executor, [self = shared_from_this(), event] {
            auto& members = self->local_presence_[event.group];
            if (event.joined) {
                members[event.member.connection] = event.member.info;
                self->start_presence_join(event.group, event.member.connection, true);
                return;
            }
            members.erase(event.member.connection);
            if (members.empty())
                self->local_presence_.erase(event.group);
            self->queue_presence_leave(event.group, event.member.connection, event.member.info);
        });
    }

    void subscribe(std::string const& group) override
    {
        net::post(host_.executor, [self = shared_from_this(), channel = channel_of(group)] {
            self->wanted_.insert(channel);
            self->send_subscription("SUBSCRIBE", channel);
        });
    }

    void unsubscribe(std::string const& group) override
    {
        net::post(host_.executor, [self = shared_from_this(), channel = channel_of(group)] {
            self->wanted_.erase(channel);
            self->send_subscription("UNSUBSCRIBE", channel);
            std::erase_if(self->in_flight_, [&](auto const& entry) {
                return self->channel_of(entry.second.group) == channel;
            });
            // Joins still waiting for it were left: nobody waits for them.
            for (auto& read : take_waiting(self->waiting_reads_, channel))
                read.done({});
        });
    }

    void stop() override
    {
        net::post(host_.executor, [self = shared_from_this()] {
            self->stopped_ = true;
            if (self->heartbeat_)
                self->heartbeat_->cancel();
            for (auto* l : {&self->publisher_, &self->subscriber_}) {
                if (!*l)
                    continue;
                if ((*l)->connection)
                    (*l)->connection->close();
                (*l)->wake.cancel();
                (*l)->health.cancel();
            }
        });
    }

    std::uint64_t dropped() const noexcept override
    {
        return dropped_.load(std::memory_order_relaxed);
    }

    bool connected() const noexcept override
    {
        return links_up_.load(std::memory_order_relaxed) == 2;
    }

    std::uint64_t published() const noexcept override
    {
        return published_.load(std::memory_order_relaxed);
    }

    std::uint64_t reconnects() const noexcept override
    {
        return reconnects_.load(std::memory_order_relaxed);
    }

private:
    enum class link_role { publisher, subscriber };
    enum class link_state { connecting, up, down };

    // One connection to Redis and what waits to be written on it. Touched
    // only on the executor.
    struct link {
        link(net::any_io_executor executor, link_role r)
            : role(r), wake(executor), helper_ended(executor), health(executor)
        {
        }

        link_role role;
        link_state state = link_state::connecting;
        std::optional<detail::redis_connection> connection;
        std::string outbox;         // whole commands, written in one go
        std::size_t outbox_publishes = 0;
        net::steady_timer wake;     // a signal: cancelled when outbox fills; also the backoff
        net::steady_timer helper_ended; // a signal: cancelled when the writer or the watch ends
        unsigned helpers_running = 0;   // write_outbox and watch_replies
        net::steady_timer health;       // the next look of watch_replies
        std::chrono::steady_clock::time_point heard; // the last reply read
        std::optional<std::chrono::steady_clock::time_point> ping_sent; // unanswered since
        std::string failure;        // why the link broke, as the first side saw it
        // The publishing link's commands in the order written, each with
        // what to do with its reply (empty: nothing); called with null when
        // the link fails first.
        std::deque<std::function<void(redisReply const*)>> awaiting;
    };

    // A presence join waiting for its group's subscription to be in place.
    struct pending_join {
        std::string group;
        std::uint64_t connection;
        bool answer;
    };

    struct unsent_leave {
        std::string group;
        std::uint64_t connection;
        std::string info;
    };

    // A history read waiting for its group's subscription to be in place.
    struct history_read {
        history_request request;
        std::function<void(join_result)> done;
    };

    /// A node id as presence_member::server shows it: 16 hex digits.
    static std::string node_name(detail::node_id const& node)
    {
        static constexpr char digits[] = "0123456789abcdef";
        std::string name;
        for (char byte : node) {
            name += digits[(static_cast<unsigned char>(byte) >> 4) & 0xF];
            name += digits[static_cast<unsigned char>(byte) & 0xF];
        }
        return name;
    }

    std::string channel_of(std::string const& group) const
    {
        return options_.channel_prefix + group;
    }

    /// "2.3": seconds with one decimal, for log lines.
    template <class Rep, class Period>
    static std::string seconds_text(std::chrono::duration<Rep, Period> span)
    {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", std::chrono::duration<double>(span).count());
        return text;
    }

    void log(log_level level, std::string const& text) const
    {
        host_.log.write(level, log_category::diagnostic, "redis: " + text);
    }

    // The event loop is being shut down (it runs no more): destroy the
    // links' I/O objects while its services still exist.
    void release_links() noexcept
    {
        stopped_ = true;
        publisher_.reset();
        subscriber_.reset();
        heartbeat_.reset();
    }

    // --- on the executor -------------------------------------------------

    /// Whether it was queued (else dropped and counted).
    bool queue_publish(std::string const& command)
    {
        if (!publisher_)
            return false;
        auto& l = *publisher_;
        if (stopped_ || l.state == link_state::down ||
            l.outbox.size() + command.size() > options_.max_buffered_bytes) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            ++dropped_in_outage_;
            return false;
        }
        l.outbox += command;
        l.awaiting.emplace_back(); // its reply: nothing to do
        ++l.outbox_publishes;
        count(published_);
        l.wake.cancel();
        return true;
    }

    void send_subscription(char const* verb, std::string const& channel)
    {
        if (!subscriber_)
            return;
        auto& l = *subscriber_;
        if (l.state != link_state::up)
            return; // the whole set is sent when the link comes up
        ++unconfirmed_[channel];
        detail::append_redis_command(l.outbox, {verb, channel});
        l.wake.cancel();
    }

    // Whether messages published on `channel` now reach this server: it is
    // wanted, and every SUBSCRIBE and UNSUBSCRIBE sent for it is confirmed.
    bool subscribed(std::string const& channel) const
    {
        auto const waiting = unconfirmed_.find(channel);
        return subscriber_ && subscriber_->state == link_state::up && wanted_.contains(channel) &&
               (waiting == unconfirmed_.end() || waiting->second == 0);
    }

    // --- histories (on the executor) -------------------------------------

    // A publish to a group whose history Redis keeps: numbered by Redis,
    // every server, this one too, gets it from there. This server's members
    // get it unnumbered (it stays out of the history) when it cannot come
    // back to them: Redis away, the group's channel not received, or the
    // link failing before it came back (in_flight_).
    void publish_numbered(group_message m)
    {
        auto const channel = channel_of(m.group);
        auto const hearing = subscribed(channel);
        auto const local = [&] {
            m.history_size = 0;
            host_.deliver(m);
        };
        if (!publisher_ || publisher_->state == link_state::down) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            ++dropped_in_outage_;
            return local();
        }
        auto const id = ++last_publish_id_;
        if (!queue_publish(numbered_publish(m, id)))
            return local(); // counted as dropped
        if (hearing)
            in_flight_.emplace(id, std::move(m));
        else if (wanted_.contains(channel))
            local();
    }

    // This server's numbered publishes that will not come back: their
    // members get them now, unnumbered.
    void deliver_in_flight_locally()
    {
        for (auto& [id, m] : std::exchange(in_flight_, {})) {
            m.history_size = 0;
            host_.deliver(m);
        }
    }

    // The publish script's command for `m` (EVAL until the script is loaded).
    std::string numbered_publish(group_message const& m, std::uint64_t id)
    {
        auto const epoch = new_epoch();
        std::string command;
        detail::append_history_publish(
            command, script_verb(publish_sha_),
            script_body(publish_sha_, detail::history_publish_script),
            options_.channel_prefix, channel_of(m.group), m.group, node_, m.op, *m.payload,
            m.history_size, m.history_age, epoch, m.excluded_connection, id);
        return command;
    }

    // 16 hex digits, random: the epoch of a history begun now.
    std::string new_epoch()
    {
        char text[17];
        std::snprintf(text, sizeof text, "%016llx",
                      static_cast<unsigned long long>(epoch_random_()));
        return text;
    }

    void start_read(history_read read)
    {
        auto const down = [](std::optional<link> const& l) {
            return !l || l->state == link_state::down;
        };
        if (stopped_ || down(publisher_) || down(subscriber_))
            return read.done({}); // Redis is away: nothing to recover from
        auto const channel = channel_of(read.request.group);
        if (!wanted_.contains(channel) && read.request.joining)
            return read.done({}); // the member has left already
        // Before the first connection, or before its messages reach us.
        if (publisher_->state != link_state::up || subscriber_->state != link_state::up ||
            (read.request.joining && !subscribed(channel))) {
            waiting_reads_.emplace(channel, std::move(read));
            return;
        }
        send_read(std::move(read));
    }

    void joins_may_go(std::string const& channel)
    {
        if (!subscribed(channel))
            return;
        for (auto& join : take_waiting(waiting_joins_, channel))
            start_presence_join(join.group, join.connection, join.answer);
    }

    // A link came up: the reads waiting for it try again.
    void retry_waiting_reads()
    {
        auto joins = std::move(waiting_joins_);
        waiting_joins_.clear();
        for (auto& [channel, join] : joins)
            start_presence_join(join.group, join.connection, join.answer);
        auto waiting = std::move(waiting_reads_);
        waiting_reads_.clear();
        for (auto& [channel, read] : waiting)
            start_read(std::move(read));
    }

    void send_read(history_read read)
    {
        auto& l = *publisher_;
        detail::append_history_read(
            l.outbox, script_verb(read_sha_), script_body(read_sha_, detail::history_read_script),
            options_.channel_prefix, read.request.group, read.request.history_size, new_epoch());
        l.awaiting.push_back([self = shared_from_this(), read = std::move(read)](redisReply const* reply) {
            auto const stored = reply ? detail::parse_stored_history(*reply) : std::nullopt;
            if (!stored) {
                if (reply)
                    self->log(log_level::error, "unexpected reply to a history read of " +
                                                    read.request.group);
                return read.done({});
            }
            read.done(detail::recover_from(*stored, read.request.from, read.request.history_age,
                                           std::chrono::system_clock::now()));
        });
        l.wake.cancel();
    }

    // --- presence (on the executor) --------------------------------------

    // This server's member `connection` joined `group`: add it to the list
    // and announce it, once its channel reaches this server, and hand the
    // whole list back (`answer`: as the answer to its join, for the server
    // to announce it; else a fresh look after an outage).
    void start_presence_join(std::string const& group, std::uint64_t connection, bool answer)
    {
        if (stopped_)
            return;
        auto const channel = channel_of(group);
        auto const up = publisher_ && publisher_->state == link_state::up && subscriber_ &&
                        subscriber_->state == link_state::up;
        if (!up) {
            // Told now with what this server knows; listed when the links are up.
            if (answer)
                host_.presence_listed(group, std::nullopt, connection);
            waiting_joins_.emplace(channel, pending_join{group, connection, false});
            return;
        }
        if (!subscribed(channel)) { // a moment: the list must not miss what follows it
            waiting_joins_.emplace(channel, pending_join{group, connection, answer});
            return;
        }
        auto const found = local_presence_.find(group);
        if (found == local_presence_.end() || !found->second.contains(connection))
            return; // it has left meanwhile
        auto const& info = found->second.at(connection);
        auto& l = *publisher_;
        auto const own = node_name(node_);
        append_presence_join(l.outbox, group, connection, info);
        l.awaiting.push_back([self = shared_from_this(), group, connection, answer,
                              own](redisReply const* reply) {
            auto list = reply ? detail::parse_presence_list(*reply, own) : std::nullopt;
            if (answer || list)
                self->host_.presence_listed(group, std::move(list), answer ? connection : 0);
        });
        l.wake.cancel();
    }

    // (Not in a coroutine: g++ 12 miscompiles braced lists in coroutines.)
    void append_presence_join(std::string& out, std::string const& group,
                              std::uint64_t connection, std::string const& info)
    {
        auto const own = node_name(node_);
        auto const ttl = std::to_string((3 * options_.presence_heartbeat).count());
        detail::append_redis_command(
            out, {script_verb(join_sha_), script_body(join_sha_, detail::presence_join_script), "1",
                  detail::presence_key(options_.channel_prefix, group),
                  detail::presence_field(own, connection), info, channel_of(group),
                  detail::seal_presence(node_, true, connection, info),
                  detail::node_key(options_.channel_prefix, own), ttl});
    }

    void queue_presence_leave(std::string const& group, std::uint64_t connection,
                              std::string const& info)
    {
        if (!publisher_ || publisher_->state != link_state::up) {
            unsent_leaves_.push_back({group, connection, info});
            return;
        }
        auto& l = *publisher_;
        detail::append_redis_command(
            l.outbox, {script_verb(leave_sha_),
                       script_body(leave_sha_, detail::presence_leave_script), "1",
                       detail::presence_key(options_.channel_prefix, group),
                       detail::presence_field(node_name(node_), connection), channel_of(group),
                       detail::seal_presence(node_, false, connection, info)});
        l.awaiting.emplace_back();
        l.wake.cancel();
    }

    // The publishing link is up again: leaves it could not send go first,
    // then this server's members are listed again (Redis may have lost
    // them, or swept them while this server could not renew its key).
    void presence_link_up()
    {
        for (auto const& leave : std::exchange(unsent_leaves_, {}))
            queue_presence_leave(leave.group, leave.connection, leave.info);
        for (auto const& [group, members] : local_presence_)
            for (auto const& [connection, info] : members)
                waiting_joins_.emplace(channel_of(group), pending_join{group, connection, false});
    }

    // Every presence_heartbeat: this server is alive; the members of those
    // that are not leave the lists of this server's groups.
    static task<void> beat(std::shared_ptr<redis_backplane> self)
    {
        while (!self->stopped_ && self->heartbeat_) {
            self->heartbeat_->expires_after(self->options_.presence_heartbeat);
            co_await self->heartbeat_->async_wait(detail::use_tuple);
            if (!self->stopped_)
                self->queue_heartbeat();
        }
    }

    void queue_heartbeat()
    {
        if (local_presence_.empty() || !publisher_ || publisher_->state != link_state::up)
            return;
        auto& l = *publisher_;
        auto const own = node_name(node_);
        auto const ttl = std::to_string((3 * options_.presence_heartbeat).count());
        detail::append_redis_command(
            l.outbox, {"SET", detail::node_key(options_.channel_prefix, own), "1", "PX", ttl});
        l.awaiting.emplace_back();
        std::string const version(1, detail::envelope_version);
        auto const nodes = options_.channel_prefix + "node:";
        for (auto const& [group, members] : local_presence_) {
            detail::append_redis_command(
                l.outbox, {script_verb(sweep_sha_),
                           script_body(sweep_sha_, detail::presence_sweep_script), "1",
                           detail::presence_key(options_.channel_prefix, group), nodes,
                           channel_of(group), version});
            l.awaiting.emplace_back();
        }
        l.wake.cancel();
    }

    // A subscription of `channel` was confirmed: the reads waiting for it go.
    void reads_may_go(std::string const& channel)
    {
        joins_may_go(channel);
        if (!subscribed(channel))
            return;
        for (auto& read : take_waiting(waiting_reads_, channel))
            start_read(std::move(read));
    }

    void fail_waiting_reads()
    {
        auto waiting = std::move(waiting_reads_);
        waiting_reads_.clear();
        for (auto& [channel, read] : waiting)
            read.done({});
    }

    // The link is up: subscribe to every wanted channel, log a recovery.
    void link_up(link& l)
    {
        auto const was = std::exchange(l.state, link_state::up);
        count(links_up_);
        if (was == link_state::down)
            count(reconnects_);
        if (l.role == link_role::publisher) {
            if (was == link_state::down)
                presence_link_up();
            retry_waiting_reads(); // the subscriber's wait on confirmations
        }
        if (l.role == link_role::subscriber) {
            std::vector<std::string_view> command{"SUBSCRIBE"};
            unconfirmed_.clear();
            for (auto const& channel : wanted_) {
                ++unconfirmed_[channel];
                command.push_back(channel);
                if (command.size() == 1000) { // bounded commands, however many groups
                    detail::append_redis_command(l.outbox, command);
                    command.resize(1);
                }
            }
            if (command.size() > 1)
                detail::append_redis_command(l.outbox, command);
            return;
        }
        auto const where = l.connection->where();
        if (was != link_state::down) {
            log(log_level::notice, "connected to " + where);
            return;
        }
        log(log_level::warning, "link to " + where + " restored after " +
                                    seconds_text(std::chrono::steady_clock::now() - down_since_) +
                                    " s; " +
                                    std::to_string(std::exchange(dropped_in_outage_, 0)) +
                                    " publishes reached local members only");
    }

    void link_down(link& l)
    {
        if (l.state == link_state::up)
            links_up_.store(links_up_.load(std::memory_order_relaxed) - 1,
                            std::memory_order_relaxed);
        if (l.role == link_role::publisher && l.state != link_state::down) {
            down_since_ = std::chrono::steady_clock::now();
            // Written or not, these never reached Redis for certain.
            dropped_.fetch_add(l.outbox_publishes, std::memory_order_relaxed);
            dropped_in_outage_ += l.outbox_publishes;
        }
        l.state = link_state::down;
        l.outbox.clear();
        l.outbox_publishes = 0;
        auto awaiting = std::move(l.awaiting);
        l.awaiting.clear();
        for (auto& handler : awaiting)
            if (handler)
                handler(nullptr);
        if (l.role == link_role::subscriber)
            unconfirmed_.clear();
        fail_waiting_reads();
        deliver_in_flight_locally();
    }

    // Connects, serves, and reconnects with backoff until stop().
    static task<void> keep_linked(std::shared_ptr<redis_backplane> self, link& l)
    {
        auto const& options = self->options_;
        auto backoff = options.reconnect_min;
        while (!self->stopped_) {
            bool reached = false;
            std::string failure;
            l.connection.emplace(self->host_.executor, options.host, options.port);
            try {
                co_await l.connection->connect(options.connect_timeout);
                co_await self->handshake(*l.connection, l.role);
                if (self->stopped_)
                    break;
                reached = true;
                backoff = options.reconnect_min;
                self->link_up(l);
                co_await self->serve(l);
            } catch (std::exception const& e) { // redis_error, or bad_alloc and the like
                failure = e.what();
            }
            l.connection->close();
            if (self->stopped_)
                break;
            auto const publishing = l.role == link_role::publisher;
            if (reached) {
                self->log(log_level::warning, failure + (publishing ? " (publishing link)"
                                                                    : " (subscribing link)"));
            } else {
                // Both links fail alike while Redis is away: one line per attempt.
                self->log(publishing ? log_level::error : log_level::debug,
                          failure + "; retrying in " + seconds_text(backoff) + " s");
            }
            self->link_down(l);
            l.wake.expires_after(backoff);
            co_await l.wake.async_wait(detail::use_tuple);
            backoff = std::min(backoff * 2, options.reconnect_max);
        }
        // The connection stays: its watchdog's handler may still be queued.
    }

    // AUTH, SELECT and PING, each answered within the connect timeout; the
    // publishing link loads the history scripts too.
    task<void> handshake(detail::redis_connection& c, link_role role)
    {
        std::vector<std::string> names;
        auto const commands = handshake_commands(names, role);
        c.arm(options_.connect_timeout);
        co_await c.write(commands);
        for (auto const& name : names) {
            auto reply = co_await c.read();
            check_handshake_reply(c, name, *reply);
            if (name == "SCRIPT LOAD (publish)")
                publish_sha_ = std::string(detail::reply_text(*reply));
            else if (name == "SCRIPT LOAD (read)")
                read_sha_ = std::string(detail::reply_text(*reply));
            else if (name == "SCRIPT LOAD (join)")
                join_sha_ = std::string(detail::reply_text(*reply));
            else if (name == "SCRIPT LOAD (leave)")
                leave_sha_ = std::string(detail::reply_text(*reply));
            else if (name == "SCRIPT LOAD (sweep)")
                sweep_sha_ = std::string(detail::reply_text(*reply));
        }
        c.disarm();
    }

    // (Not in the coroutine: g++ 12 miscompiles braced lists in coroutines.)
    std::string handshake_commands(std::vector<std::string>& names, link_role role) const
    {
        std::string commands;
        if (!options_.password.empty()) {
            if (options_.username.empty())
                detail::append_redis_command(commands, {"AUTH", options_.password});
            else
                detail::append_redis_command(commands,
                                             {"AUTH", options_.username, options_.password});
            names.push_back("AUTH");
        }
        if (options_.database != 0) {
            auto const database = std::to_string(options_.database);
            detail::append_redis_command(commands, {"SELECT", database});
            names.push_back("SELECT");
        }
        detail::append_redis_command(commands, {"PING"});
        names.push_back("PING");
        if (role == link_role::publisher) {
            detail::append_redis_command(commands,
                                         {"SCRIPT", "LOAD", detail::history_publish_script});
            names.push_back("SCRIPT LOAD (publish)");
            detail::append_redis_command(commands, {"SCRIPT", "LOAD", detail::history_read_script});
            names.push_back("SCRIPT LOAD (read)");
            for (auto const& [label, body] : {std::pair{"SCRIPT LOAD (join)", detail::presence_join_script},
                                              std::pair{"SCRIPT LOAD (leave)", detail::presence_leave_script},
                                              std::pair{"SCRIPT LOAD (sweep)", detail::presence_sweep_script}}) {
                detail::append_redis_command(commands, {"SCRIPT", "LOAD", body});
                names.push_back(label);
            }
        }
        return commands;
    }

    static void check_handshake_reply(detail::redis_connection& c, std::string const& command,
                                      redisReply const& reply)
    {
        auto const text = std::string(detail::reply_text(reply));
        if (reply.type == REDIS_REPLY_ERROR)
            throw detail::redis_error(c.where() + " refused " + command + ": " + text);
        if (command == "PING" && text != "PONG")
            throw detail::redis_error(c.where() + " does not answer PING like Redis");
    }

    // Reads what Redis sends while a writer of its own writes what the
    // link's outbox collects and a watch PINGs, until one of them fails;
    // then waits for the other two to end, so the connection can be replaced.
    task<void> serve(link& l)
    {
        l.heard = std::chrono::steady_clock::now();
        l.ping_sent.reset();
        run_helper(l, write_outbox(l));
        run_helper(l, watch_replies(l));
        try {
            co_await read_replies(l);
        } catch (std::exception const& e) {
            if (l.failure.empty())
                l.failure = e.what();
        }
        l.connection->close(); // ends the writer and the watch
        l.wake.cancel();
        l.health.cancel();
        while (l.helpers_running != 0) {
            l.helper_ended.expires_at(net::steady_timer::time_point::max());
            co_await l.helper_ended.async_wait(detail::use_tuple);
        }
        throw detail::redis_error(std::exchange(l.failure, {}));
    }

    void run_helper(link& l, task<void> helper)
    {
        ++l.helpers_running;
        net::co_spawn(host_.executor, std::move(helper), [&l](std::exception_ptr failure) {
            if (failure && l.failure.empty()) {
                try {
                    std::rethrow_exception(failure);
                } catch (std::exception const& e) {
                    l.failure = e.what();
                }
            }
            --l.helpers_running;
            l.connection->close(); // ends the reader
            l.helper_ended.cancel();
        });
    }

    // Every ping_interval: a link with a PING unanswered for ping_timeout
    // (nothing read since it was queued) fails; otherwise a PING is queued
    // unless one is still on its way.
    task<void> watch_replies(link& l)
    {
        while (l.connection->is_open()) {
            l.health.expires_after(options_.ping_interval);
            co_await l.health.async_wait(detail::use_tuple);
            if (!l.connection->is_open())
                break;
            auto const now = std::chrono::steady_clock::now();
            if (l.ping_sent && l.heard < *l.ping_sent) {
                if (now - *l.ping_sent >= options_.ping_timeout)
                    throw detail::redis_error("no reply from " + l.connection->where() +
                                              " within " + seconds_text(options_.ping_timeout) +
                                              " s of a PING");
                continue;
            }
            queue_ping(l, now);
        }
    }

    // (Not in the coroutine: g++ 12 miscompiles braced lists in coroutines.)
    static void queue_ping(link& l, std::chrono::steady_clock::time_point now)
    {
        detail::append_redis_command(l.outbox, {"PING"});
        if (l.role == link_role::publisher)
            l.awaiting.emplace_back();
        l.ping_sent = now;
        l.wake.cancel();
    }

    task<void> write_outbox(link& l)
    {
        std::string writing;
        while (l.connection->is_open()) {
            if (l.outbox.empty()) {
                l.wake.expires_at(net::steady_timer::time_point::max());
                co_await l.wake.async_wait(detail::use_tuple); // new commands, or the end
                continue;
            }
            writing.clear();
            writing.swap(l.outbox);
            l.outbox_publishes = 0;
            co_await l.connection->write(writing);
        }
    }

    task<void> read_replies(link& l)
    {
        for (;;) {
            auto reply = co_await l.connection->read();
            l.heard = std::chrono::steady_clock::now();
            if (reply->type == REDIS_REPLY_ERROR)
                log(log_level::error, l.connection->where() + " answered an error: " +
                                          std::string(detail::reply_text(*reply)));
            if (l.role == link_role::subscriber) {
                if (reply->type != REDIS_REPLY_ERROR)
                    on_pushed(*reply);
            } else if (!l.awaiting.empty()) {
                auto handler = std::move(l.awaiting.front());
                l.awaiting.pop_front();
                if (handler)
                    handler(reply.get());
            }
        }
    }

    // A message on a subscribed channel: ["message", channel, payload]; or a
    // confirmation: ["subscribe" or "unsubscribe", channel, count].
    void on_pushed(redisReply const& reply)
    {
        if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3)
            return;
        auto const kind = detail::reply_text(*reply.element[0]);
        if (kind == "subscribe" || kind == "unsubscribe") {
            auto const channel = std::string(detail::reply_text(*reply.element[1]));
            if (auto found = unconfirmed_.find(channel); found != unconfirmed_.end() &&
                                                         found->second != 0 && --found->second == 0)
                unconfirmed_.erase(found);
            reads_may_go(channel);
            return;
        }
        if (kind != "message")
            return;
        auto const channel = detail::reply_text(*reply.element[1]);
        auto const opened = detail::open_envelope(detail::reply_text(*reply.element[2]));
        if (!opened || !channel.starts_with(options_.channel_prefix)) {
            log(log_level::debug, "ignored a message on " + std::string(channel) +
                                      " that no mallard server published");
            return;
        }
        auto group = std::string(channel.substr(options_.channel_prefix.size()));
        if (opened->what == opened_envelope::kind::numbered) {
            // Every server's members get it from here, this one's too.
            auto const numbered = detail::open_numbered(opened->payload);
            if (!numbered)
                return log(log_level::debug, "ignored a malformed numbered message on " +
                                                 std::string(channel));
            if (opened->origin == node_)
                in_flight_.erase(numbered->publish_id);
            group_message message{std::move(group),
                                  std::make_shared<std::string const>(numbered->payload),
                                  opened->op, opened->origin == node_ ? numbered->excluded : 0};
            message.offset = numbered->offset;
            message.epoch = std::string(numbered->epoch);
            host_.deliver(message);
            return;
        }
        if (opened->origin == node_)
            return; // our own publish: its local members have it already
        if (opened->what != opened_envelope::kind::message) {
            if (host_.presence_changed)
                host_.presence_changed(
                    {std::move(group), opened->what == opened_envelope::kind::joined,
                     presence_member{std::string(opened->payload), opened->connection,
                                     node_name(opened->origin)}});
            return;
        }
        host_.deliver({std::move(group), std::make_shared<std::string const>(opened->payload),
                       opened->op, 0});
    }

    redis_options const options_;
    detail::node_id node_{};
    host host_;
    std::optional<link> publisher_, subscriber_;
    std::set<std::string> wanted_; // channels with local members
    // SUBSCRIBE and UNSUBSCRIBE commands sent per channel and not yet confirmed.
    std::map<std::string, unsigned> unconfirmed_;
    std::multimap<std::string, history_read> waiting_reads_; // by channel
    // The scripts, once loaded (until then they go whole, with EVAL).
    std::string publish_sha_, read_sha_, join_sha_, leave_sha_, sweep_sha_;

    // Takes out what waits on `channel`, so that going on with it may queue
    // it again.
    template <class Waiting>
    static std::vector<Waiting> take_waiting(std::multimap<std::string, Waiting>& waiting,
                                             std::string const& channel)
    {
        auto [first, last] = waiting.equal_range(channel);
        std::vector<Waiting> taken;
        for (auto it = first; it != last; ++it)
            taken.push_back(std::move(it->second));
        waiting.erase(first, last);
        return taken;
    }

    static std::string_view script_verb(std::string const& sha) noexcept
    {
        return sha.empty() ? "EVAL" : "EVALSHA";
    }

    static std::string_view script_body(std::string const& sha, char const* script) noexcept
    {
        return sha.empty() ? std::string_view(script) : std::string_view(sha);
    }
    std::mt19937_64 epoch_random_{std::random_device{}()};
    // This server's members of groups with presence: group, connection, info.
    std::map<std::string, std::map<std::uint64_t, std::string>> local_presence_;
    std::multimap<std::string, pending_join> waiting_joins_; // by channel
    std::vector<unsent_leave> unsent_leaves_;
    // Numbered publishes of this server on their way back from Redis, by
    // this server's number for them.
    std::map<std::uint64_t, group_message> in_flight_;
    std::uint64_t last_publish_id_ = 0;
    std::optional<net::steady_timer> heartbeat_;
    bool stopped_ = false;
    std::chrono::steady_clock::time_point down_since_{};
    std::uint64_t dropped_in_outage_ = 0;
    std::atomic<std::uint64_t> dropped_{0};
    // Written on the executor only, read by any thread (the metrics).
    std::atomic<unsigned> links_up_{0};
    std::atomic<std::uint64_t> published_{0};
    std::atomic<std::uint64_t> reconnects_{0};

    template <class Counter>
    static void count(std::atomic<Counter>& counter) noexcept
    {
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
};

} // namespace mallard::detail

#endif
