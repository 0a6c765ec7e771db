// SPDX-License-Identifier: BSL-1.0
/// @file
/// Everything a program needs to serve WebSocket views over ws://.
#ifndef MALLARD_MALLARD_HPP
#define MALLARD_MALLARD_HPP

// Every public header of mallard but <mallard/tls.hpp>, which needs OpenSSL
// (CMake target mallard::tls), <mallard/redis.hpp>, which needs hiredis
// (mallard::redis), and <mallard/json.hpp>, which needs Boost.JSON
// (mallard::json).

#include <mallard/backplane.hpp>
#include <mallard/close_reason.hpp>
#include <mallard/connection.hpp>
#include <mallard/group_history.hpp>
#include <mallard/group_policy.hpp>
#include <mallard/logger.hpp>
#include <mallard/opcode.hpp>
#include <mallard/options.hpp>
#include <mallard/presence.hpp>
#include <mallard/request.hpp>
#include <mallard/router.hpp>
#include <mallard/send_status.hpp>
#include <mallard/server.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/server_stats.hpp>
#include <mallard/task.hpp>
#include <mallard/tls_context.hpp>
#include <mallard/upgrade_decision.hpp>
#include <mallard/version.hpp>
#include <mallard/websocket_view.hpp>

#endif
