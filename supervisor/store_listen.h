// A dedicated PostgreSQL connection that LISTENs for the store's user
// changes (kUsersChannel: the store NOTIFYs in the same transaction as each
// add, update and remove of a user, with the user's name), so that every
// host of a fleet applies a change made through any host within about a
// second (docs/fleet.md).
//
// Never blocks: the connection is made with libpq's non-blocking calls
// (PQconnectStartParams / PQconnectPoll) and read only when its socket is
// readable. The caller owns the waiting (the supervisor's event loop waits
// on socket() for what advance() asks) and the reconnecting: after an
// error, drop the listener and start a new one. Changes made while no
// listener was subscribed are not replayed: once subscribed() turns true
// the caller reads the whole user list once.
// Thread: one thread. Not copyable; movable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "supervisor/store.h"

namespace mtw::supervisor {

class StoreListener {
 public:
  // What the connection waits for next.
  enum class Wait { kRead, kWrite };

  // Starts connecting to the database `config` names (PostgreSQL only);
  // reads password_file now. kBadInput for a SQLite config or a bad
  // connection string; kSyscall when libpq cannot even start.
  [[nodiscard]] static base::Result<StoreListener> start(const StoreConfig& config);
  StoreListener(StoreListener&&) noexcept;
  StoreListener& operator=(StoreListener&&) noexcept;
  ~StoreListener();

  // The connection's socket (changes while connecting: read it again after
  // each advance()).
  int socket() const noexcept;
  // Moves the connection on after its socket became ready for what the
  // last call asked (after start(): writable, as libpq wants): the handshake
  // while connecting, then the LISTEN and any notification. Returns what to
  // wait for next. An error means the connection is gone (the cause named,
  // never the password).
  [[nodiscard]] base::Result<Wait> advance();
  // True once the server confirmed the LISTEN.
  bool subscribed() const noexcept;
  // The names of the users changed since the last call (one entry per
  // notification, in arrival order; the same name may repeat).
  std::vector<std::string> take_changes();

 private:
  struct State;
  explicit StoreListener(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace mtw::supervisor
