// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_FANOUT_HPP
#define MALLARD_DETAIL_FANOUT_HPP

// A server's groups. Membership lives with the members: each worker keeps
// its own thread's members, touched only on that thread, so joining, leaving
// and delivering take no lock. Only the member count per group is shared
// (under a mutex, on join and leave, not per message), because it decides
// when the backplane subscribes or unsubscribes.
//
// A publish goes out through the backplane; what comes back is posted once
// per worker with one shared payload, and each worker hands it to its
// members' queues. Posts from one thread to one worker run in order, so
// every member sees one publisher's messages in publish order.

#include <mallard/backplane.hpp>
#include <mallard/detail/group_hub.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/server_metrics.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mallard::detail {

class fanout final : public group_hub {
public:
    fanout(std::vector<std::unique_ptr<worker>>& workers, std::shared_ptr<backplane> carrier,
           logger const& log)
        : workers_(workers), backplane_(std::move(carrier))
    {
        backplane_->start({[this](group_message const& message) { deliver(message); },
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
        metrics.groups += counts_.size();
        for (auto const& [name, members] : counts_)
            metrics.group_members += members;
    }

    void join(std::size_t index, session_base& session, std::string const& group) override
    {
        workers_[index]->groups()[group].push_back(&session);
        std::lock_guard lock(mutex_);
        if (++counts_[group] == 1)
            backplane_->subscribe(group);
    }

    void leave(std::size_t index, session_base& session, std::string const& group) override
    {
        auto& groups = workers_[index]->groups();
        if (auto found = groups.find(group); found != groups.end()) {
            auto& members = found->second;
            auto const at = std::find(members.begin(), members.end(), &session);
            if (at == members.end())
                return;
            *at = members.back(); // order among members does not matter
            members.pop_back();
            if (members.empty())
                groups.erase(found);
        }
        std::lock_guard lock(mutex_);
        auto const count = counts_.find(group);
        if (count != counts_.end() && --count->second == 0) {
            counts_.erase(count);
            backplane_->unsubscribe(group);
        }
    }

    std::size_t publish(std::string const& group, std::shared_ptr<std::string const> payload,
                        opcode op, std::uint64_t excluded_connection) override
    {
        auto const members = size(group);
        backplane_->publish({group, std::move(payload), op, excluded_connection});
        return members;
    }

    std::size_t size(std::string const& group) const override
    {
        std::lock_guard lock(mutex_);
        auto const found = counts_.find(group);
        return found == counts_.end() ? 0 : found->second;
    }

private:
    void deliver(group_message const& message)
    {
        for (auto& w : workers_)
            net::post(w->loop(), [&w = *w, message] {
                auto const found = w.groups().find(message.group);
                if (found == w.groups().end())
                    return;
                auto const kind = message.op == opcode::binary ? outbound_message::kind::binary
                                                               : outbound_message::kind::text;
                for (auto* member : found->second)
                    if (member->id() != message.excluded_connection)
                        (void)member->send_now({kind, {}, message.payload});
            });
    }

    std::vector<std::unique_ptr<worker>>& workers_;
    std::shared_ptr<backplane> backplane_;
    std::atomic<bool> backplane_stopped_{false};
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::size_t> counts_;
};

} // namespace mallard::detail

#endif
