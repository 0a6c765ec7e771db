// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_BACKPLANE_HPP
#define MALLARD_BACKPLANE_HPP

#include <mallard/opcode.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace mallard {

/// One publish to a group, as it travels between servers.
struct group_message {
    /// The group's name.
    std::string group;
    /// The payload, built once and shared by every recipient.
    std::shared_ptr<std::string const> payload;
    /// `opcode::text` or `opcode::binary`.
    mallard::opcode op = mallard::opcode::text;
    /// A connection of the publishing server not to deliver to (the sender
    /// itself, when it asked to be excluded); 0 for none.
    std::uint64_t excluded_connection = 0;
};

/** Carries group publishes to the servers whose clients are members.

    Every `publish` goes through the server's backplane, which hands each
    message to `deliver` on every server that should see it, its own
    included. The default, `in_process_backplane`, just calls `deliver`:
    one process is one chat. Another implementation (e.g. over Redis pub/sub)
    lets several processes behind a load balancer form one chat, without any
    change to views.

    @par Thread safety
    `publish`, `subscribe` and `unsubscribe` are called from any server
    thread, concurrently, and must never block. `deliver` may be called from
    any thread.
*/
class backplane {
public:
    /// Hands a message to this server's local members of its group.
    using deliver_function = std::function<void(group_message const&)>;

    virtual ~backplane() = default;

    /// Called once by the server before it runs.
    virtual void start(deliver_function deliver) = 0;

    /// Sends `message` to every server with members of its group.
    virtual void publish(group_message message) = 0;

    /// This server has its first local member of `group`.
    virtual void subscribe(std::string const& group) { (void)group; }

    /// This server's last local member of `group` has left.
    virtual void unsubscribe(std::string const& group) { (void)group; }

    /// Called once when the server has stopped.
    virtual void stop() {}
};

/// The default backplane: publishes reach this process's members only.
class in_process_backplane final : public backplane {
public:
    void start(deliver_function deliver) override { deliver_ = std::move(deliver); }
    void publish(group_message message) override { deliver_(message); }

private:
    deliver_function deliver_;
};

} // namespace mallard

#endif
