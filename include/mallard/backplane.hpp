// SPDX-License-Identifier: BSL-1.0
/// @file
/// The interface that carries group messages, histories and presence between processes.
#ifndef MALLARD_BACKPLANE_HPP
#define MALLARD_BACKPLANE_HPP

#include <mallard/group_history.hpp>
#include <mallard/logger.hpp>
#include <mallard/opcode.hpp>
#include <mallard/presence.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

    // The next four are set for a group with a history that the backplane
    // keeps (`backplane::keeps_history()`), and zero or empty otherwise.

    /// On `publish`: how many messages the group's history keeps (> 0).
    std::size_t history_size = 0;
    /// On `publish`: how long the history keeps a message; 0 for no age bound.
    std::chrono::milliseconds history_age{0};
    /// On `deliver`: the message's offset, which the backplane assigned.
    std::uint64_t offset = 0;
    /// On `deliver`: the epoch of the history the message went into.
    std::string epoch{};
};

/// What a server asks of a backplane that keeps histories, for a member
/// joining a group from a position.
struct history_request {
    /// The group's name.
    std::string group;
    /// Where the member's client stands; `since{}` for nowhere.
    since from{};
    /// The group's policy: how many messages its history keeps.
    std::size_t history_size = 0;
    /// The group's policy: how long its history keeps a message; 0 for no
    /// age bound.
    std::chrono::milliseconds history_age{0};
    /// For a member joining: the read waits until this server receives the
    /// group's new messages. False for a look at the history only.
    bool joining = true;
};

/// A member joined or left a group with presence, as it travels between
/// servers.
struct presence_event {
    /// The group's name.
    std::string group;
    /// Joined (true) or left (false).
    bool joined = true;
    /// The member, as its server lists it (`presence_member::server` empty:
    /// the backplane fills it in for the other servers).
    presence_member member;
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

    /// Hands another server's presence change to this server's groups.
    using presence_function = std::function<void(presence_event const&)>;
    /// Hands this server the other servers' members of a group, all of them
    /// (see keeps_presence). `joined`: the connection of this server's
    /// member whose join the list answers; 0 when it is a fresh look after
    /// an outage.
    /// `others` is empty (no value) when the list cannot be had (the store
    /// is away): the join is then told with what this server knows.
    using presence_list_function =
        std::function<void(std::string const& group,
                           std::optional<std::vector<presence_member>> others, std::uint64_t joined)>;

    /// What the server lends its backplane.
    struct host {
        /// Hands a message to this server's members of its group.
        deliver_function deliver;
        /// Hands another server's member joining or leaving a group with
        /// presence to this server (which keeps the whole list).
        presence_function presence_changed;
        /// Hands this server a group's whole list (see keeps_presence).
        presence_list_function presence_listed;
        /// One of the server's event loops, for the backplane's own I/O: a
        /// single thread runs it. Its work keeps the server running until
        /// `stop()`.
        boost::asio::any_io_executor executor;
        /// The server's logger.
        mallard::logger log;
    };

    virtual ~backplane() = default;

    /// Called once by the server when it is made, before it runs.
    virtual void start(host server) = 0;

    /// Sends `message` to every server with members of its group.
    virtual void publish(group_message message) = 0;

    /** Whether this backplane keeps every server's members of the groups
        with presence, so that a server that gets its first member of a
        group learns the members the others have: it then answers each join
        of this server's members (`publish_presence`) with the group's whole
        list through `host::presence_listed`, and the server tells its
        members of the join only then, with the whole list. It also clears
        the members of servers that died without a goodbye, announcing their
        leaves. Default false.
    */
    virtual bool keeps_presence() const noexcept { return false; }

    /** A member of this server joined or left a group with presence:
        carry it to the other servers with members of the group, each
        naming this server in `member.server`. The default carries nothing
        (one process: its list is complete). Same threads as `publish`.
    */
    virtual void publish_presence(presence_event const& event) { (void)event; }

    /** Whether this backplane keeps the histories of groups with history
        (`group_policy::history_size`) and numbers their messages, so that
        every server sees the same offsets and a client recovers on any of
        them. Then a publish to such a group carries `history_size` and
        `history_age`, must not be delivered to this server before it is
        numbered, and comes back to every server's `deliver` (this one's
        too) with its `offset` and `epoch`, in offset order; and
        `read_history` serves joins. Default false: each server numbers and
        keeps its own.
    */
    virtual bool keeps_history() const noexcept { return false; }

    /** With `keeps_history()`: what a member joining `request.group` from
        `request.from` gets, decided as `join_result` says. Called after
        `subscribe` for the group: every message numbered after the
        history was read must reach `deliver`, so the read waits until the
        subscription is in place. `done` is called once, on any thread; when
        the history cannot be read (the store is unreachable) with
        `recovered == false` and no messages. Never blocks.
    */
    virtual void read_history(history_request request, std::function<void(join_result)> done)
    {
        (void)request;
        done({});
    }

    /// This server has its first local member of `group`.
    virtual void subscribe(std::string const& group) { (void)group; }

    /// This server's last local member of `group` has left.
    virtual void unsubscribe(std::string const& group) { (void)group; }

    /// Called once, when every connection of the server has ended (or the
    /// server is destroyed without having run): end all I/O on `executor`.
    virtual void stop() {}

    /// Publishes that could not be carried to other servers (they still
    /// reached this server's members); reported in `server_stats`.
    virtual std::uint64_t dropped() const noexcept { return 0; }

    /// Whether the links to the other servers are up now; exported as
    /// `mallard_backplane_up`. Any thread. Default: true (nothing to link).
    virtual bool connected() const noexcept { return true; }

    /// Publishes handed on towards the other servers; any thread.
    virtual std::uint64_t published() const noexcept { return 0; }

    /// Times a link to the other servers came up after a failure (lost, or
    /// not reached); any thread.
    virtual std::uint64_t reconnects() const noexcept { return 0; }
};

/// The default backplane: publishes reach this process's members only.
class in_process_backplane final : public backplane {
public:
    void start(host server) override { deliver_ = std::move(server.deliver); }
    void publish(group_message message) override { deliver_(message); }

private:
    deliver_function deliver_;
};

} // namespace mallard

#endif
