// Private to the child programs (conn/, worker/, gate/): the process
// contract's vocabulary (ipc/) by the short names their code uses, in one
// list: conn:: has them, and worker/names.h and gate/names.h bring the same
// list into their namespaces.
#pragma once

#include "ipc/asio.h"
#include "ipc/control_protocol.h"
#include "ipc/counters.h"

namespace mtw::conn::vocabulary {

namespace asio = boost::asio;
namespace control = ipc::control;
using ipc::awaitable;
using ipc::Clock;
using ipc::connect_endpoint;
using ipc::Counter;
using ipc::counter_name;
using ipc::Counters;
using ipc::counters_json;
using ipc::counters_summary;
using ipc::error_code;
using ipc::failure_counter;
using ipc::LogExceptions;
using ipc::tcp;
using ipc::tune_listener;
using ipc::tune_socket;
using ipc::use_nothrow;

}  // namespace mtw::conn::vocabulary

namespace mtw::conn {
using namespace vocabulary;
}  // namespace mtw::conn
