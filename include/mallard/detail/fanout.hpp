// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_FANOUT_HPP
#define MALLARD_DETAIL_FANOUT_HPP

// A server's groups. Membership lives with the members: each worker keeps
// its own thread's members, touched only on that thread, so joining, leaving
// and delivering take no lock. What is shared (under a mutex, on join and
// leave, not per message) is each group's state: its member count, which
// decides when the backplane subscribes or unsubscribes, its presence list,
// and its history.
//
// A publish goes out through the backplane; what comes back is posted once
// per worker with one shared payload, and each worker hands it to its
// members' queues. Posts from one thread to one worker run in order, so
// every member sees one publisher's messages in publish order.
//
// A group with history (its group_policy) takes its offsets here, in this
// process: a message is numbered, kept and posted to the workers under the
// mutex, so every worker sees the group's messages in offset order. A member
// joining from a position is recovered on its own thread, in one step under
// the mutex: it gets every kept message after its position up to the last
// one numbered, and skips those if their posts reach its worker after it
// joined; every later one reaches it live.

#include <mallard/backplane.hpp>
#include <mallard/detail/group_hub.hpp>
#include <mallard/detail/group_log.hpp>
#include <mallard/detail/group_policies.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/server_metrics.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mallard::detail {

class fanout final : public group_hub {
public:
    /// @throws std::invalid_argument for a group policy that cannot work.
    fanout(std::vector<std::unique_ptr<worker>>& workers, std::shared_ptr<backplane> carrier,
           logger const& log, std::vector<group_policy> policies = {})
        : workers_(workers)
        , backplane_(std::move(carrier))
        , policies_(std::move(policies))
        , log_(log)
    {
        backplane_->start({[this](group_message const& message) { deliver(message); },
                           [this](presence_event const& event) { presence_changed(event); },
                           [this](std::string const& group,
                                  std::optional<std::vector<presence_member>> others,
                                  std::uint64_t joined) {
                               presence_listed(group, std::move(others), joined);
                           },
                           workers_.front()->loop().get_executor(), log});
    }

    ~fanout() override { stop_backplane(); }

    /// Ends the backplane's I/O, once; any thread.
    void stop_backplane()
    {
        if (!backplane_stopped_.exchange(true))
            backplane_->stop();
    }

    /// Publishes the backplane could not carry to other servers.
    std::uint64_t backplane_dropped() const noexcept { return backplane_->dropped(); }

    /// What the backplane reports; any thread.
    backplane_metrics backplane_status() const noexcept
    {
        return {backplane_->connected(), backplane_->published(), backplane_->dropped(),
                backplane_->reconnects()};
    }

    /// Adds the groups with a member on this server, and their memberships,
    /// to `metrics`; any thread.
    void count_groups(server_metrics& metrics) const
    {
        std::lock_guard lock(mutex_);
        for (auto const& [name, state] : groups_)
            if (state.members != 0) {
                ++metrics.groups;
                metrics.group_members += state.members;
            }
    }

    /// Whether joins and history() wait for the backplane's read.
    bool reads_elsewhere() const noexcept { return backplane_->keeps_history(); }

    std::optional<join_result> join(std::size_t index, session_base& session,
                                    std::string const& group, join_request const& request,
                                    std::uint64_t ticket) override
    {
        auto& members = workers_[index]->groups()[group];
        members.push_back({&session, 0, nullptr});
        auto& member = members.back(); // members change on this thread only
        auto const* policy = policies_.find(group);
        auto const history = policy && policy->history_size != 0;
        auto const elsewhere = history && backplane_->keeps_history();
        if (elsewhere && request.from) // until the read arrives
            member.held = std::make_unique<std::vector<worker::held_delivery>>();
        std::optional<join_result> result{std::in_place};
        {
            std::lock_guard lock(mutex_);
            auto& state = groups_[group];
            if (++state.members == 1)
                backplane_->subscribe(group);
            if (history && !elsewhere) {
                auto& log = log_of(state, *policy);
                if (request.from)
                    result = log.recover(*request.from, group_log::clock::now());
                else
                    result->position = log.position();
                // Posts of these may still be on their way to this thread.
                member.delivered_through = log.last_offset();
            }
            if (policy && policy->presence) {
                state.presence.push_back({request.presence, session.id(), {}});
                // With a backplane that lists every server's members, the
                // members hear of the join with the whole list (presence_listed).
                if (!backplane_->keeps_presence())
                    announce(group, *policy, state, presence_change::kind::joined,
                             state.presence.back());
                backplane_->publish_presence({group, true, state.presence.back()});
            }
        }
        if (member.held) { // after subscribe: the backplane reads once it is in place
            result.reset();
            backplane_->read_history(
                {group, *request.from, policy->history_size, policy->history_age},
                [self = session.weak_from_this(), ticket](join_result read) {
                    if (auto alive = self.lock())
                        alive->history_read(ticket, std::move(read));
                });
        }
        return result;
    }

    join_result finish_join(std::size_t index, session_base& session, std::string const& group,
                            join_result read) override
    {
        auto& groups = workers_[index]->groups();
        auto const found = groups.find(group);
        if (found == groups.end())
            return read;
        auto const member = std::find_if(found->second.begin(), found->second.end(),
                                         [&](auto const& m) { return m.session == &session; });
        if (member == found->second.end() || !member->held)
            return read;
        // What arrived while the history was read: the messages after it go
        // to the member with it, the notices after its reply.
        auto last = read.messages.empty() ? read.position.offset
                                          : std::max(read.position.offset, read.messages.back().offset);
        auto const held = std::move(member->held);
        auto const now = std::chrono::system_clock::now();
        std::vector<std::shared_ptr<std::string const>> notices;
        for (auto& d : *held) {
            if (d.offset == 0)
                notices.push_back(d.sent);
            else if (d.offset > last) {
                read.messages.push_back({d.offset, d.published, d.op, now});
                last = d.offset;
            }
        }
        member->delivered_through = last;
        read.position.offset = std::max(read.position.offset, last);
        if (!notices.empty())
            net::post(workers_[index]->loop(), [self = session.shared_from_this(),
                                                notices = std::move(notices)] {
                for (auto const& n : notices)
                    (void)self->send_now({outbound_message::kind::text, {}, n});
            });
        return read;
    }

    void leave(std::size_t index, session_base& session, std::string const& group) override
    {
        auto& groups = workers_[index]->groups();
        if (auto found = groups.find(group); found != groups.end()) {
            auto& members = found->second;
            auto const at = std::find_if(members.begin(), members.end(),
                                         [&](auto const& m) { return m.session == &session; });
            if (at == members.end())
                return;
            *at = std::move(members.back()); // order among members does not matter
            members.pop_back();
            if (members.empty())
                groups.erase(found);
        }
        auto const* policy = policies_.find(group);
        std::lock_guard lock(mutex_);
        auto const found = groups_.find(group);
        if (found == groups_.end())
            return;
        auto& state = found->second;
        if (--state.members == 0)
            backplane_->unsubscribe(group);
        if (policy && policy->presence) {
            auto const at = std::find_if(state.presence.begin(), state.presence.end(), [&](auto const& m) {
                return m.connection == session.id() && m.server.empty();
            });
            if (at != state.presence.end()) {
                auto const gone = std::move(*at);
                state.presence.erase(at); // keeps the order of joining
                announce(group, *policy, state, presence_change::kind::left, gone);
                backplane_->publish_presence({group, false, gone});
            }
            // Without local members no news of the others comes any more.
            if (state.members == 0)
                std::erase_if(state.presence, [](auto const& m) { return !m.server.empty(); });
        }
        if (state.members == 0 && !keeps_history(state))
            groups_.erase(found);
    }

    std::size_t publish(std::string const& group, std::shared_ptr<std::string const> payload,
                        opcode op, std::uint64_t excluded_connection) override
    {
        auto const members = size(group);
        group_message message{group, std::move(payload), op, excluded_connection};
        if (backplane_->keeps_history() && !policies_.empty())
            if (auto const* policy = policies_.find(group); policy && policy->history_size != 0) {
                message.history_size = policy->history_size;
                message.history_age = policy->history_age;
            }
        backplane_->publish(std::move(message));
        return members;
    }

    std::size_t size(std::string const& group) const override
    {
        std::lock_guard lock(mutex_);
        auto const found = groups_.find(group);
        return found == groups_.end() ? 0 : found->second.members;
    }

    std::vector<presence_member> presence(std::string const& group) const override
    {
        std::lock_guard lock(mutex_);
        auto const found = groups_.find(group);
        return found == groups_.end() ? std::vector<presence_member>{} : found->second.presence;
    }

    void read_history(std::string const& group, std::function<void(group_history)> done) override
    {
        auto const* policy = policies_.find(group);
        if (!policy || policy->history_size == 0)
            return done({});
        if (backplane_->keeps_history())
            return backplane_->read_history(
                {group, since{}, policy->history_size, policy->history_age, false},
                [done = std::move(done)](join_result read) {
                    done({std::move(read.position), std::move(read.messages)});
                });
        group_history history;
        {
            std::lock_guard lock(mutex_);
            history = log_of(groups_[group], *policy).snapshot(group_log::clock::now());
        }
        done(std::move(history));
    }

private:
    // What the groups share across threads; under mutex_.
    struct group_state {
        std::size_t members = 0; // on this server
        std::vector<presence_member> presence;
        std::optional<group_log> log;
    };

    // Any thread: a message the backplane hands this server's members.
    void deliver(group_message const& message)
    {
        auto const* policy = policies_.empty() ? nullptr : policies_.find(message.group);
        if (!policy || policy->history_size == 0) {
            post_to_workers(message.group, message.payload, message.payload, message.op,
                            message.excluded_connection, 0);
            return;
        }
        if (backplane_->keeps_history()) {
            // Numbered by the backplane, which hands them over in offset
            // order from one thread: no lock needed to keep it.
            if (message.offset == 0) { // unnumbered (the store was away): live only
                post_to_workers(message.group, message.payload, message.payload, message.op,
                                message.excluded_connection, 0);
                return;
            }
            history_entry const entry{message.offset, message.payload, message.op,
                                      std::chrono::system_clock::now()};
            post_to_workers(message.group, formatted(message.group, *policy, entry),
                            message.payload, message.op, message.excluded_connection,
                            entry.offset);
            return;
        }
        std::lock_guard lock(mutex_);
        auto& log = log_of(groups_[message.group], *policy);
        auto const& entry = log.append(message.payload, message.op, group_log::clock::now());
        post_to_workers(message.group, formatted(message.group, *policy, entry), message.payload,
                        message.op, message.excluded_connection, entry.offset);
    }

    // What members receive for `entry`: the policy's format of it.
    std::shared_ptr<std::string const> formatted(std::string const& group,
                                                 group_policy const& policy,
                                                 history_entry const& entry) const
    {
        if (!policy.format)
            return entry.payload;
        try {
            return std::make_shared<std::string const>(policy.format(group, entry));
        } catch (std::exception const& e) {
            log_.write(log_level::error, log_category::diagnostic,
                       "group_policy::format threw for group " + group + ": " + e.what() +
                           "; the message went out as published");
            return entry.payload;
        }
    }

    // Any thread: another server's member joined or left a group; only
    // groups with members here follow the others'.
    void presence_changed(presence_event const& event)
    {
        auto const* policy = policies_.find(event.group);
        if (!policy || !policy->presence || event.member.server.empty())
            return;
        std::lock_guard lock(mutex_);
        auto const found = groups_.find(event.group);
        if (found == groups_.end() || found->second.members == 0)
            return;
        auto& list = found->second.presence;
        auto const at = std::find_if(list.begin(), list.end(), [&](auto const& m) {
            return m.connection == event.member.connection && m.server == event.member.server;
        });
        if (event.joined && at == list.end()) {
            list.push_back(event.member);
            announce(event.group, *policy, found->second, presence_change::kind::joined, list.back());
        } else if (!event.joined && at != list.end()) {
            auto const gone = std::move(*at);
            list.erase(at);
            announce(event.group, *policy, found->second, presence_change::kind::left, gone);
        }
    }

    // Any thread: the other servers' members of a group, all of them, from
    // a backplane that keeps presence; in answer to the join of this
    // server's member `joined`, or (0) a fresh look after an outage.
    void presence_listed(std::string const& group,
                         std::optional<std::vector<presence_member>> whole, std::uint64_t joined)
    {
        auto const* policy = policies_.find(group);
        if (!policy || !policy->presence)
            return;
        std::lock_guard lock(mutex_);
        auto const found = groups_.find(group);
        if (found == groups_.end() || found->second.members == 0)
            return;
        auto& state = found->second;
        if (!whole) { // no list to be had: the join is told with what is known
            auto const member = std::find_if(state.presence.begin(), state.presence.end(), [&](auto const& m) {
                return m.server.empty() && m.connection == joined;
            });
            if (joined != 0 && member != state.presence.end())
                announce(group, *policy, state, presence_change::kind::joined, *member);
            return;
        }
        auto& others = *whole;
        auto const same = [](presence_member const& a, presence_member const& b) {
            return a.connection == b.connection && a.server == b.server;
        };
        auto const listed = [&](presence_member const& m) {
            return std::any_of(others.begin(), others.end(), [&](auto const& o) { return same(o, m); });
        };
        auto const known = [&](presence_member const& o) {
            return std::any_of(state.presence.begin(), state.presence.end(),
                               [&](auto const& m) { return same(o, m); });
        };
        if (joined != 0) {
            // The whole list first, quietly: the join is the news.
            std::erase_if(state.presence, [&](auto const& m) { return !m.server.empty() && !listed(m); });
            for (auto& o : others)
                if (!known(o))
                    state.presence.push_back(std::move(o));
            auto const member = std::find_if(state.presence.begin(), state.presence.end(), [&](auto const& m) {
                return m.server.empty() && m.connection == joined;
            });
            if (member != state.presence.end())
                announce(group, *policy, state, presence_change::kind::joined, *member);
            return;
        }
        // After an outage: each difference is news.
        std::vector<presence_member> gone;
        for (auto const& m : state.presence)
            if (!m.server.empty() && !listed(m))
                gone.push_back(m);
        for (auto const& m : gone) {
            std::erase_if(state.presence, [&](auto const& p) { return same(p, m); });
            announce(group, *policy, state, presence_change::kind::left, m);
        }
        for (auto& o : others)
            if (!known(o)) {
                state.presence.push_back(std::move(o));
                announce(group, *policy, state, presence_change::kind::joined, state.presence.back());
            }
    }

    // Hands a message to each worker's members of `group`; with an offset,
    // to those that do not have it from their join already. `sent` is what
    // members receive, `published` the message as published (kept for a
    // member whose join waits for the history).
    void post_to_workers(std::string const& group, std::shared_ptr<std::string const> sent,
                         std::shared_ptr<std::string const> published, opcode op,
                         std::uint64_t excluded, std::uint64_t offset)
    {
        auto const kind =
            op == opcode::binary ? outbound_message::kind::binary : outbound_message::kind::text;
        for (auto& w : workers_)
            net::post(w->loop(), [&w = *w, group, sent, published, op, kind, excluded, offset] {
                auto const found = w.groups().find(group);
                if (found == w.groups().end())
                    return;
                for (auto const& member : found->second) {
                    if (member.session->id() == excluded)
                        continue;
                    if (member.held)
                        member.held->push_back({offset, published, sent, op});
                    else if (offset == 0 || offset > member.delivered_through)
                        (void)member.session->send_now({kind, {}, sent});
                }
            });
    }

    // Under mutex_: the presence_messages of a change, to every member.
    void announce(std::string const& group, group_policy const& policy, group_state const& state,
                  presence_change::kind what, presence_member const& member)
    {
        if (!policy.presence_messages)
            return;
        std::vector<std::string> messages;
        try {
            messages = policy.presence_messages({group, what, member, state.presence});
        } catch (std::exception const& e) {
            log_.write(log_level::error, log_category::diagnostic,
                       "group_policy::presence_messages threw for group " + group + ": " +
                           e.what());
            return;
        }
        for (auto& text : messages) {
            auto const shared = std::make_shared<std::string const>(std::move(text));
            post_to_workers(group, shared, shared, opcode::text, 0, 0);
        }
    }

    // Under mutex_: the group's history, begun with a new epoch if it has none.
    group_log& log_of(group_state& state, group_policy const& policy)
    {
        if (!state.log)
            state.log.emplace(new_epoch(), policy.history_size, policy.history_age);
        return *state.log;
    }

    // Under mutex_: whether a group without members still has messages to keep.
    static bool keeps_history(group_state& state)
    {
        if (!state.log)
            return false;
        state.log->forget_old(group_log::clock::now());
        return !state.log->empty();
    }

    // Under mutex_: 16 hex digits, random: a history begun in this process.
    std::string new_epoch()
    {
        char text[17];
        std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(random_()));
        return text;
    }

    std::vector<std::unique_ptr<worker>>& workers_;
    std::shared_ptr<backplane> backplane_;
    group_policies const policies_;
    logger log_;
    std::atomic<bool> backplane_stopped_{false};
    mutable std::mutex mutex_;
    std::unordered_map<std::string, group_state> groups_;
    std::mt19937_64 random_{std::random_device{}()};
};

} // namespace mallard::detail

#endif
