// mallard chat example: the browser side.
//
// Plain JavaScript, no build step. The page talks to the chat server over one
// WebSocket per joined room:
//   ws(s)://<host>/ws/chat/<room>?name=<nickname>[&token=<token>][&since=<offset>&epoch=<epoch>]
// Every frame is a JSON text frame:
//   server -> client  {"type":"history","messages":[{"name","text","time","offset"}, ...],
//                      "epoch":"...","recovered":true|false}
//                     {"type":"join","name":"bob","members":3}
//                     {"type":"leave","name":"bob","members":2}
//                     {"type":"presence","members":["ann","bob"]}
//                     {"type":"message","name":"ann","text":"hello","time":"...","offset":7}
//                     {"type":"error","error":"..."}
//   client -> server  {"type":"message","text":"hello"}
// The server echoes each message to the whole room, the sender included.
// When a connection that was open is lost, the page reconnects by itself with
// backoff and passes the last offset it saw and the history's epoch: the
// server's history reply then holds exactly the messages it missed
// ("recovered": true), or the room's last messages to start afresh.
// User data is only ever rendered with textContent, never as HTML.
'use strict';

(() => {
  const MAX_RENDERED = 500; // older entries are dropped from the list
  const ERROR_SHOWN_MS = 6000; // how long a server error stays in the status line
  const RECONNECT_FIRST_MS = 500; // the first retry after a lost connection
  const RECONNECT_MAX_MS = 10000; // retries back off, doubling, up to this

  const $ = (id) => document.getElementById(id);
  const ui = {
    joinForm: $('join-form'),
    room: $('room'),
    name: $('name'),
    join: $('join'),
    leave: $('leave'),
    status: $('status'),
    members: $('members'),
    memberList: $('member-list'),
    messages: $('messages'),
    empty: $('empty'),
    composer: $('composer'),
    text: $('text'),
    send: $('send'),
  };

  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');

  let socket = null; // the current WebSocket, or null
  let room = ''; // the room of the current socket
  let nickname = ''; // the nickname used for the current socket
  let leaving = false; // true when the user asked to leave
  let errorTimer = null;
  // Where this page stands in the room's history: the last offset it showed
  // and the epoch of that history; sent back when it reconnects.
  let lastOffset = 0;
  let epoch = '';
  let reconnectTimer = null;
  let reconnectDelay = RECONNECT_FIRST_MS;

  // ---- status line -------------------------------------------------------

  function setStatus(text, kind) {
    clearTimeout(errorTimer);
    errorTimer = null;
    ui.status.textContent = text;
    ui.status.className = 'status' + (kind ? ' ' + kind : '');
  }

  function showError(text) {
    setStatus('error: ' + text, 'error');
    // Errors the server reports on an open connection do not end it: go back to
    // the normal status after a while.
    errorTimer = setTimeout(() => {
      if (socket && socket.readyState === WebSocket.OPEN) setStatus('connected to ' + room, 'ok');
    }, ERROR_SHOWN_MS);
  }

  function setMembers(count) {
    ui.members.textContent = Number.isFinite(count) && count >= 0 ? String(count) : '0';
  }

  function setMemberList(names) {
    const items = names.map((name) => {
      const item = document.createElement('li');
      item.textContent = name;
      item.style.setProperty('--hue', String(nameHue(name)));
      return item;
    });
    ui.memberList.replaceChildren(...items);
    setMembers(names.length);
  }

  // ---- joined / left state of the controls ---------------------------------

  function setJoined(joined) {
    ui.room.disabled = joined;
    ui.name.disabled = joined;
    ui.join.hidden = joined;
    ui.leave.hidden = !joined;
    ui.text.disabled = !joined;
    ui.send.disabled = !joined;
    document.body.classList.toggle('joined', joined);
    if (joined) ui.text.focus();
  }

  function setConnecting(connecting) {
    ui.join.disabled = connecting;
    ui.room.disabled = connecting;
    ui.name.disabled = connecting;
    ui.leave.hidden = !connecting;
    ui.join.hidden = connecting;
  }

  // ---- the message list ----------------------------------------------------

  function nameHue(name) {
    let hash = 0;
    for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (!iso || Number.isNaN(date.getTime())) return null;
    return date;
  }

  function isNearBottom() {
    const list = ui.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function append(item) {
    const stick = isNearBottom();
    ui.messages.appendChild(item);
    while (ui.messages.childElementCount > MAX_RENDERED) ui.messages.firstElementChild.remove();
    ui.empty.hidden = true;
    if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function addMessage(msg, fromHistory) {
    const name = String(msg.name ?? '');
    const text = String(msg.text ?? '');

    const item = document.createElement('li');
    item.className = 'message';
    if (name === nickname) item.classList.add('mine');
    if (fromHistory) item.classList.add('history');

    const meta = document.createElement('div');
    meta.className = 'meta';

    const nameEl = document.createElement('span');
    nameEl.className = 'name';
    nameEl.textContent = name;
    nameEl.style.setProperty('--hue', String(nameHue(name)));
    meta.appendChild(nameEl);

    const date = formatTime(msg.time);
    if (date) {
      const timeEl = document.createElement('time');
      timeEl.className = 'time';
      timeEl.dateTime = date.toISOString();
      timeEl.title = date.toLocaleString();
      timeEl.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      meta.appendChild(timeEl);
    }

    const textEl = document.createElement('div');
    textEl.className = 'text';
    textEl.textContent = text;

    item.append(meta, textEl);
    append(item);
  }

  function addNotice(text, kind) {
    const item = document.createElement('li');
    item.className = 'notice' + (kind ? ' ' + kind : '');
    item.textContent = text;
    append(item);
  }

  // A room message, once: one with an offset at or before the last shown
  // is one the page has already.
  function showMessage(msg, fromHistory) {
    const offset = Number(msg.offset);
    if (Number.isSafeInteger(offset) && offset > 0) {
      if (offset <= lastOffset) return;
      lastOffset = offset;
    }
    addMessage(msg, fromHistory);
  }

  function clearMessages() {
    ui.messages.replaceChildren();
    ui.empty.hidden = false;
  }

  // ---- the connection ------------------------------------------------------

  function chatUrl(roomName, name) {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${scheme}//${window.location.host}/ws/chat/${encodeURIComponent(roomName)}` +
      `?name=${encodeURIComponent(name)}`;
    if (token) url += `&token=${encodeURIComponent(token)}`;
    if (epoch) url += `&since=${lastOffset}&epoch=${encodeURIComponent(epoch)}`;
    return url;
  }

  function rememberInAddressBar(roomName, name) {
    const next = new URLSearchParams();
    next.set('room', roomName);
    next.set('name', name);
    if (token) next.set('token', token);
    try {
      window.history.replaceState(null, '', `${window.location.pathname}?${next}`);
    } catch {
      // Some embedders refuse history changes; the page works without it.
    }
  }

  const CLOSE_MEANINGS = {
    1000: 'normal closure',
    1001: 'server going away',
    1002: 'protocol error',
    1003: 'unsupported data',
    1006: 'connection lost',
    1007: 'invalid data',
    1008: 'policy violation',
    1009: 'message too big',
    1011: 'server error',
    1012: 'service restart',
    1013: 'try again later',
  };

  function describeClose(event) {
    let text = `code ${event.code}`;
    const reason = event.reason || CLOSE_MEANINGS[event.code];
    if (reason) text += `: ${reason}`;
    return text;
  }

  function handleFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      addNotice('received a frame that is not JSON', 'error');
      return;
    }
    if (!msg || typeof msg !== 'object') return;

    switch (msg.type) {
      case 'history': {
        const list = Array.isArray(msg.messages) ? msg.messages : [];
        const resuming = epoch !== '';
        if (msg.recovered !== true) {
          // A fresh start: what is shown may have gaps the server cannot fill.
          clearMessages();
          lastOffset = 0;
        }
        epoch = typeof msg.epoch === 'string' ? msg.epoch : '';
        for (const m of list) showMessage(m, !resuming);
        if (!resuming && list.length > 0) addNotice('earlier messages above', 'divider');
        if (resuming) {
          addNotice(msg.recovered === true
            ? `reconnected: ${list.length} missed message${list.length === 1 ? '' : 's'} recovered`
            : 'reconnected: the room\'s history moved on; showing its last messages', 'divider');
        }
        break;
      }
      case 'presence':
        if (Array.isArray(msg.members)) setMemberList(msg.members.map((n) => String(n)));
        break;
      case 'join': {
        const who = String(msg.name ?? '');
        addNotice(who === nickname ? `you joined ${room}` : `${who} joined`, 'join');
        setMembers(msg.members);
        break;
      }
      case 'leave': {
        addNotice(`${String(msg.name ?? '')} left`, 'leave');
        setMembers(msg.members);
        break;
      }
      case 'message':
        showMessage(msg, false);
        break;
      case 'error':
        showError(String(msg.error ?? 'unknown error'));
        addNotice(String(msg.error ?? 'unknown error'), 'error');
        break;
      default:
        // Unknown types are ignored so that newer servers keep working.
        break;
    }
  }

  function join() {
    const roomName = ui.room.value.trim();
    const name = ui.name.value.trim();
    if (!roomName) {
      setStatus('error: choose a room', 'error');
      ui.room.focus();
      return;
    }
    if (!name) {
      setStatus('error: choose a nickname', 'error');
      ui.name.focus();
      return;
    }
    if (socket) disconnect();
    stopReconnecting();

    room = roomName;
    nickname = name;
    leaving = false;
    lastOffset = 0;
    epoch = '';
    clearMessages();
    setMemberList([]);
    ui.empty.textContent = `No messages in ${roomName} yet. Say hello!`;
    setStatus(`connecting to ${roomName}…`, 'pending');
    setConnecting(true);
    connect(false);
  }

  function stopReconnecting() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    reconnectDelay = RECONNECT_FIRST_MS;
  }

  // After a lost connection: try again later, each time waiting twice as
  // long (with some jitter, so that a restarted server is not hit by every
  // page at once), until the user leaves.
  function scheduleReconnect(why) {
    const delay = Math.round(reconnectDelay * (0.75 + Math.random() * 0.5));
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    setStatus(`reconnecting… (${why})`, 'pending');
    document.body.classList.add('reconnecting');
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect(true);
    }, delay);
  }

  // Opens the room's WebSocket; `again` for a reconnect after a lost one.
  function connect(again) {
    const roomName = room;
    const name = nickname;
    let ws;
    try {
      ws = new WebSocket(chatUrl(roomName, name));
    } catch (err) {
      setConnecting(false);
      setStatus(`error: ${err.message}`, 'error');
      return;
    }
    socket = ws;
    let opened = false;

    ws.addEventListener('open', () => {
      if (ws !== socket) return;
      opened = true;
      reconnectDelay = RECONNECT_FIRST_MS;
      document.body.classList.remove('reconnecting');
      ui.join.disabled = false;
      setJoined(true);
      setStatus(`connected to ${roomName}`, 'ok');
      rememberInAddressBar(roomName, name);
    });

    ws.addEventListener('message', (event) => {
      if (ws !== socket) return;
      if (typeof event.data === 'string') handleFrame(event.data);
    });

    ws.addEventListener('close', (event) => {
      if (ws !== socket) return;
      socket = null;
      ui.join.disabled = false;
      if (leaving) {
        setJoined(false);
        setMemberList([]);
        document.body.classList.remove('reconnecting');
        setStatus('disconnected');
        addNotice(`you left ${roomName}`, 'leave');
      } else if (opened || again) {
        // It was connected: the network or the server went away. Keep the
        // messages shown and come back for the ones missed meanwhile.
        if (opened) addNotice(`connection lost (${describeClose(event)}); reconnecting…`, 'error');
        scheduleReconnect(describeClose(event));
      } else {
        setJoined(false);
        setMemberList([]);
        // Browsers do not tell a page why a handshake failed: a refused token
        // (HTTP 401) looks the same as a server that cannot be reached.
        setStatus(`could not connect to ${roomName}: refused or unreachable`, 'error');
        addNotice(token
          ? `Could not connect to ${roomName}: the server refused the connection or cannot be ` +
            'reached. Check the access token (token=…) in the page address.'
          : `Could not connect to ${roomName}: the server refused the connection or cannot be ` +
            'reached. If it needs an access token, add token=… to the page address.', 'error');
      }
    });
  }

  function disconnect() {
    if (reconnectTimer !== null) {
      // Waiting to reconnect: leaving is just not coming back.
      stopReconnecting();
      leaving = true;
      setJoined(false);
      setMemberList([]);
      document.body.classList.remove('reconnecting');
      setStatus('disconnected');
      addNotice(`you left ${room}`, 'leave');
      return;
    }
    if (!socket) return;
    leaving = true;
    const ws = socket;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      ws.close(1000, 'leaving');
    }
  }

  function sendMessage() {
    const text = ui.text.value.trim();
    if (!text) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      setStatus('error: not connected', 'error');
      return;
    }
    // The server echoes every message to the whole room, the sender included,
    // so nothing is rendered here.
    socket.send(JSON.stringify({ type: 'message', text }));
    ui.text.value = '';
    ui.text.focus();
  }

  // ---- wiring --------------------------------------------------------------

  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    join();
  });

  ui.leave.addEventListener('click', () => disconnect());

  // Submitting the form covers both the Send button and Enter in #text.
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    sendMessage();
  });

  if (params.has('room')) ui.room.value = params.get('room');
  if (params.has('name')) ui.name.value = params.get('name');
  setJoined(false);
  setStatus('disconnected');

  const autojoin = params.get('autojoin');
  if (autojoin === '1' || autojoin === 'true') {
    join();
  } else if (!ui.name.value) {
    ui.name.focus();
  }
})();
