// mallard chat example: the browser side.
//
// Plain JavaScript, no build step. The page talks to the chat server over one
// WebSocket per joined room:
//   ws(s)://<host>/ws/chat/<room>?name=<nickname>[&token=<token>]
// Every frame is a JSON text frame:
//   server -> client  {"type":"history","messages":[{"name","text","time"}, ...]}
//                     {"type":"join","name":"bob","members":3}
//                     {"type":"leave","name":"bob","members":2}
//                     {"type":"message","name":"ann","text":"hello","time":"..."}
//                     {"type":"error","error":"..."}
//   client -> server  {"type":"message","text":"hello"}
// The server echoes each message to the whole room, the sender included.
// User data is only ever rendered with textContent, never as HTML.
'use strict';

(() => {
  const MAX_RENDERED = 500; // older entries are dropped from the list
  const ERROR_SHOWN_MS = 6000; // how long a server error stays in the status line

  const $ = (id) => document.getElementById(id);
  const ui = {
    joinForm: $('join-form'),
    room: $('room'),
    name: $('name'),
    join: $('join'),
    leave: $('leave'),
    status: $('status'),
    members: $('members'),
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
        for (const m of list) addMessage(m, true);
        if (list.length > 0) addNotice('earlier messages above', 'divider');
        break;
      }
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
        addMessage(msg, false);
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

    room = roomName;
    nickname = name;
    leaving = false;
    clearMessages();
    setMembers(0);
    ui.empty.textContent = `No messages in ${roomName} yet. Say hello!`;
    setStatus(`connecting to ${roomName}…`, 'pending');
    setConnecting(true);

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
      setJoined(false);
      setMembers(0);
      if (leaving) {
        setStatus('disconnected');
        addNotice(`you left ${roomName}`, 'leave');
      } else if (!opened) {
        // Browsers do not tell a page why a handshake failed: a refused token
        // (HTTP 401) looks the same as a server that cannot be reached.
        setStatus(`could not connect to ${roomName}: refused or unreachable`, 'error');
        addNotice(token
          ? `Could not connect to ${roomName}: the server refused the connection or cannot be ` +
            'reached. Check the access token (token=…) in the page address.'
          : `Could not connect to ${roomName}: the server refused the connection or cannot be ` +
            'reached. If it needs an access token, add token=… to the page address.', 'error');
      } else {
        setStatus(`disconnected (${describeClose(event)})`, 'error');
        addNotice(`connection closed (${describeClose(event)})`, 'error');
      }
    });
  }

  function disconnect() {
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
