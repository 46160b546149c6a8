// The serial console page: xterm.js joined to the proxy's websocket.
//
// The page is served at the console URL itself (a plain GET of
// .../?token=T), so it derives the websocket URL from its own location:
// http -> ws, https -> wss, same host, same path. That keeps one URL
// working behind TLS termination and behind a path prefix.
//
// The token is read once, kept in this closure for reconnects, and taken
// out of the address bar at once so it does not linger in history. It is
// never logged.
(function () {
  'use strict';

  // Texts for the close codes of the proxy's contract, used when the server
  // gave no reason of its own: close-codes.js, which the proxy renders from
  // its own definition of the codes.
  var CLOSE_TEXTS = window.SERIALPROXY_CLOSE_CODES || {};
  // The SysRq keys the menu lists, what each does, and why the
  // destructive ones are confirmed: sysrq-keys.js, rendered by the proxy
  // from the key set the API and the compute agent use.
  var SYSRQ_KEYS = window.SERIALPROXY_SYSRQ_KEYS || [];
  var NMI = {
    note: {nmi: true},
    name: 'NMI',
    label: 'Inject a non-maskable interrupt',
    confirm: 'Many kernels panic on an NMI (kernel.panic_on_unrecovered_nmi,' +
             ' kdump): the server may stop or restart.'
  };
  // How long the answer to a SysRq or NMI stays in the toolbar.
  var COMMAND_STATUS_MS = 10000;
  var NEW_URL_HINT = 'Ask for a new console URL.';
  // Sessions that were ended on purpose: reconnecting with the same URL
  // would undo it (an operator's disconnect revokes the URL's token
  // anyway, and the longest session age is there to make the user ask
  // the API, and so their roles, again).
  var FINAL_ENDINGS = ['operator', 'max-age'];
  var NO_RECONNECT = ['no-token', 'no-xterm'].concat(FINAL_ENDINGS);
  // A guest sitting at a prompt prints nothing until a key is pressed.
  var QUIET_GUEST_MS = 2000;
  var ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?/;

  var body = document.body;
  var statusText = document.getElementById('status-text');
  var sizeText = document.getElementById('size');
  var reconnectButton = document.getElementById('reconnect');
  var watchButton = document.getElementById('watch');
  var takeOverButton = document.getElementById('take-over');
  var watchersText = document.getElementById('watchers');
  var fullscreenButton = document.getElementById('fullscreen');
  var container = document.getElementById('terminal');
  var sysrqButton = document.getElementById('sysrq');
  var sysrqMenu = document.getElementById('sysrq-menu');
  var sysrqKeys = document.getElementById('sysrq-keys');
  var sysrqLevels = document.getElementById('sysrq-level-keys');
  var nmiButton = document.getElementById('nmi');
  var commandStatus = document.getElementById('command-status');
  var confirmDialog = document.getElementById('confirm');

  // --- the token: remembered here, removed from the address bar ----------
  var consoleQuery = location.search;
  var params = new URLSearchParams(location.search);
  var hasToken = params.has('token') && params.get('token') !== '';
  if (params.has('token')) {
    params.delete('token');
    var rest = params.toString();
    history.replaceState(history.state, '',
                         location.pathname + (rest ? '?' + rest : '') +
                         location.hash);
  }
  // ?mode=: the writer (default), a read-only spectator ("view") or a
  // writer replacing the current one ("take_over"). The buttons offered
  // on a console in use change it.
  var mode = params.get('mode') || 'write';
  // A watch-only URL (the proxy says so once connected) only ever
  // watches: no typing, no take-over, no SysRq, whatever ?mode= says.
  var watchOnly = false;
  function consolePath() {
    var query = new URLSearchParams(consoleQuery);
    if (mode === 'write') {
      query.delete('mode');
    } else {
      query.set('mode', mode);
    }
    return location.pathname + '?' + query.toString();
  }
  function websocketURL() {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') +
        '//' + location.host + consolePath();
  }

  // --- status line -------------------------------------------------------
  function showStatus(state, key, text, detail) {
    body.dataset.state = state;
    body.dataset.reason = key;
    statusText.textContent = detail ?
        text.replace(/[.\s]+$/, '') + '. ' + detail : text;
    // Reconnecting cannot help without a token or without xterm.js, and
    // must not undo an ending that was meant.
    reconnectButton.hidden = state !== 'disconnected' ||
        NO_RECONNECT.indexOf(key) !== -1;
    // Someone else types in it: watch, or (policy permitting) take over.
    watchButton.hidden = key !== 'in-use';
    takeOverButton.hidden = watchOnly || key !== 'in-use';
    if (state !== 'connected') {
      showWatchers(0);
      // SysRq and NMI go over the session: none without one.
      showPermissions([]);
      if (commandPending) {
        showCommandStatus(commandPending.name + ': the connection closed ' +
                          'before the proxy answered', 'failed');
        commandPending = null;
      }
    }
  }

  // The writer hears from the proxy how many watch (a text frame), once
  // it has sent one: the proxy sends notes only to a client that
  // speaks text, and the page asks for its permissions on open.
  function showWatchers(count) {
    watchersText.hidden = !count;
    watchersText.textContent = count === 1 ? '1 watching' :
        count + ' watching';
  }

  function proxyNote(text) {
    var note;
    try {
      note = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!note || typeof note !== 'object') {
      return;
    }
    if (typeof note.spectators === 'number') {
      showWatchers(note.spectators);
    }
    if (note.watch_only === true) {
      watchOnly = true;
      mode = 'view';
      showStatus('connected', 'watching', 'Watching (read-only)',
                 'This console URL may only watch.');
    }
    if (Array.isArray(note.permissions)) {
      showPermissions(watchOnly ? [] : note.permissions);
    }
    if (note.sent && typeof note.sent === 'object') {
      commandAnswered((note.sent.nmi ? 'NMI' : 'SysRq ' + note.sent.sysrq) +
                      ' sent', false);
    }
    if (typeof note.error === 'string') {
      commandAnswered(note.error, true);
    }
  }

  // --- SysRq and NMI: offered as far as the token allows --------------------
  // The writer's page asks the proxy what its console URL allows
  // ({"permissions": true} -> {"permissions": [...]}); it sends {"sysrq":
  // KEY} or {"nmi": true} as text frames and hears {"sent": ...} or
  // {"error": ...}. Clients that send no text get none of this.
  var commandPending = null;
  var commandStatusTimer = null;
  var confirming = null;

  function keyCommand(entry) {
    return {note: {sysrq: entry.key}, name: 'SysRq ' + entry.key,
            label: entry.label, confirm: entry.confirm};
  }

  function keyButton(entry, text) {
    var button = document.createElement('button');
    button.type = 'button';
    var kbd = document.createElement('kbd');
    kbd.textContent = entry.key;
    button.appendChild(kbd);
    if (text) {
      button.appendChild(document.createTextNode(text));
    } else {
      button.setAttribute('aria-label', entry.label);
    }
    button.title = 'SysRq ' + entry.key + ': ' + entry.label +
        (entry.confirm ? ' (asks first)' : '');
    if (entry.confirm) {
      button.className = 'destructive';
    }
    button.addEventListener('click', function () {
      ask(keyCommand(entry));
    });
    return button;
  }
  SYSRQ_KEYS.forEach(function (entry) {
    if (/^[0-9]$/.test(entry.key)) {
      sysrqLevels.appendChild(keyButton(entry, ''));
    } else {
      sysrqKeys.appendChild(keyButton(entry, entry.label));
    }
  });
  nmiButton.addEventListener('click', function () {
    ask(NMI);
  });

  function showPermissions(list) {
    var sysrq = list.indexOf('sysrq') >= 0 && SYSRQ_KEYS.length > 0;
    var nmi = list.indexOf('nmi') >= 0;
    sysrqKeys.hidden = sysrqLevels.parentNode.hidden = !sysrq;
    nmiButton.hidden = !nmi;
    sysrqButton.hidden = !sysrq && !nmi;
    if (sysrqButton.hidden) {
      showMenu(false);
      if (confirmDialog.open) {
        confirmDialog.close();
      }
    }
  }

  function showMenu(open) {
    sysrqMenu.hidden = !open;
    sysrqButton.setAttribute('aria-expanded', String(open));
  }

  sysrqButton.addEventListener('click', function () {
    showMenu(sysrqMenu.hidden);
    if (!sysrqMenu.hidden) {
      var first = sysrqKeys.hidden ? nmiButton :
          sysrqKeys.querySelector('button');
      if (first) {
        first.focus();
      }
    }
  });
  sysrqMenu.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') {
      showMenu(false);
      sysrqButton.focus();
    }
  });
  // A click anywhere else closes the menu; capture, as the terminal
  // keeps its mouse events to itself.
  document.addEventListener('mousedown', function (ev) {
    if (!sysrqMenu.hidden && !sysrqMenu.parentNode.contains(ev.target)) {
      showMenu(false);
    }
  }, true);

  // The keys that reboot, crash or stop the server, and the NMI, are
  // sent only once the user says so in a modal dialog; Cancel has the
  // focus, so Enter does not send them.
  function ask(command) {
    showMenu(false);
    if (!command.confirm) {
      sendCommand(command);
      return;
    }
    confirming = command;
    document.getElementById('confirm-title').textContent =
        command.name + ': ' + command.label + '?';
    document.getElementById('confirm-text').textContent = command.confirm;
    document.getElementById('confirm-send').textContent =
        'Send ' + command.name;
    confirmDialog.returnValue = '';
    confirmDialog.showModal();
    document.getElementById('confirm-cancel').focus();
  }
  confirmDialog.addEventListener('close', function () {
    var command = confirming;
    confirming = null;
    if (command && confirmDialog.returnValue === 'send') {
      sendCommand(command);
    } else if (command) {
      showCommandStatus(command.name + ' not sent', 'cancelled');
    }
    term.focus();
  });

  function sendCommand(command) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showCommandStatus(command.name + ' not sent: not connected', 'failed');
    } else if (commandPending) {
      showCommandStatus(commandPending.name + ' is still being sent',
                        'failed');
    } else {
      commandPending = command;
      // Text, not binary: the proxy reads it as a command, not as keys.
      socket.send(JSON.stringify(command.note));
      showCommandStatus('Sending ' + command.name + '\u2026', 'busy');
    }
    term.focus();
  }

  function commandAnswered(text, failed) {
    commandPending = null;
    showCommandStatus(text, failed ? 'failed' : 'sent');
  }

  function showCommandStatus(text, kind) {
    clearTimeout(commandStatusTimer);
    commandStatus.textContent = text;
    commandStatus.className = kind;
    commandStatus.hidden = false;
    if (kind !== 'busy') {
      commandStatusTimer = setTimeout(function () {
        commandStatus.hidden = true;
      }, COMMAND_STATUS_MS * (kind === 'failed' ? 2 : 1));
    }
  }

  function withLocalTime(reason) {
    var match = ISO_TIME.exec(reason);
    if (!match) {
      return reason;
    }
    var when = new Date(match[0]);
    if (isNaN(when.getTime())) {
      return reason;
    }
    return reason + ' (' + when.toLocaleString() + ' your time)';
  }

  // --- the terminal --------------------------------------------------------
  if (typeof Terminal === 'undefined' || typeof FitAddon === 'undefined') {
    showStatus('disconnected', 'no-xterm',
               'The terminal scripts did not load',
               'The proxy could not serve xterm.js; its operator must ' +
               'install serialproxy from a wheel or sdist, or run npm ' +
               'ci in its source tree (see the proxy\'s log).');
    return;
  }

  var term = new Terminal({
    cursorBlink: true,
    fontFamily: '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, ' +
                'monospace',
    fontSize: 15,
    scrollback: 5000,
    theme: {
      background: '#101214',
      foreground: '#e6e6e6',
      cursor: '#f2f2f2',
      cursorAccent: '#101214',
      selectionBackground: '#3b6ea8',
      selectionForeground: '#ffffff'
    }
  });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(container);

  function showSize() {
    sizeText.textContent = term.cols + '\u00d7' + term.rows;
    sizeText.title = 'Terminal size, columns \u00d7 rows. A serial line ' +
        'does not tell the guest its size; to match it run: stty rows ' +
        term.rows + ' cols ' + term.cols;
  }
  term.onResize(showSize);

  var fitPending = false;
  function scheduleFit() {
    if (fitPending) {
      return;
    }
    fitPending = true;
    requestAnimationFrame(function () {
      fitPending = false;
      fit.fit();
    });
  }
  fit.fit();
  showSize();
  new ResizeObserver(scheduleFit).observe(container);
  if (document.fonts && document.fonts.ready) {
    document.fonts.ready.then(scheduleFit);
  }

  // --- copy on select, paste, keys the browser would otherwise take -------
  var copyTimer = null;
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).catch(function () {
        copyWithSelection(text);
      });
    } else {
      copyWithSelection(text);
    }
  }
  function copyWithSelection(text) {
    // Plain http to a remote host has no Clipboard API: copy the old way.
    var scratch = document.createElement('textarea');
    scratch.value = text;
    scratch.setAttribute('readonly', '');
    scratch.style.position = 'fixed';
    scratch.style.opacity = '0';
    document.body.appendChild(scratch);
    scratch.select();
    try {
      document.execCommand('copy');
    } finally {
      document.body.removeChild(scratch);
      term.focus();
    }
  }
  term.onSelectionChange(function () {
    // A drag changes the selection many times: copy once it settles.
    clearTimeout(copyTimer);
    copyTimer = setTimeout(function () {
      var text = term.getSelection();
      if (text) {
        copyText(text);
      }
    }, 150);
  });

  term.attachCustomKeyEventHandler(function (ev) {
    var ctrlShift = ev.ctrlKey && ev.shiftKey && !ev.altKey && !ev.metaKey;
    if (ctrlShift && ev.code === 'KeyC') {
      // Copy, not the browser's element inspector.
      ev.preventDefault();
      if (ev.type === 'keydown' && term.hasSelection()) {
        copyText(term.getSelection());
      }
      return false;
    }
    if (ctrlShift && ev.code === 'KeyV') {
      // Let the browser paste: xterm.js takes the paste event.
      return false;
    }
    if (ctrlShift && ev.code === 'F6') {
      // Tab goes to the guest; this is the way out for keyboard users.
      ev.preventDefault();
      if (ev.type === 'keydown') {
        var next = !reconnectButton.hidden ? reconnectButton :
            !fullscreenButton.hidden ? fullscreenButton : null;
        if (next) {
          next.focus();
        } else {
          term.blur();  // framed without full screen: Tab leaves the frame
        }
      }
      return false;
    }
    return true;
  });

  // --- full screen: the browser then hands Ctrl+W, Ctrl+T... to the page --
  // A dashboard's frame without allow="fullscreen" forbids it: no button.
  fullscreenButton.hidden = !document.fullscreenEnabled;
  fullscreenButton.addEventListener('click', function () {
    if (document.fullscreenElement) {
      document.exitFullscreen();
      return;
    }
    document.documentElement.requestFullscreen().then(function () {
      if (navigator.keyboard && navigator.keyboard.lock) {
        return navigator.keyboard.lock();
      }
    }).catch(function () {
      // Refused (no user gesture, policy): the page works as before.
    }).then(function () {
      term.focus();
    });
  });
  document.addEventListener('fullscreenchange', function () {
    var on = Boolean(document.fullscreenElement);
    fullscreenButton.textContent = on ? 'Exit full screen' : 'Full screen';
    if (!on && navigator.keyboard && navigator.keyboard.unlock) {
      navigator.keyboard.unlock();
    }
  });

  // --- the websocket ----------------------------------------------------------
  var socket = null;
  var everOpened = false;
  var encoder = new TextEncoder();

  function send(bytes) {
    // A spectator's keys would be dropped by the proxy anyway.
    if (mode !== 'view' && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(bytes);
    }
  }
  // websockify refuses text frames: every keystroke goes as binary UTF-8.
  term.onData(function (data) {
    send(encoder.encode(data));
  });
  term.onBinary(function (data) {
    var bytes = new Uint8Array(data.length);
    for (var i = 0; i < data.length; i++) {
      bytes[i] = data.charCodeAt(i) & 0xff;
    }
    send(bytes);
  });

  function connect() {
    if (socket) {
      return;
    }
    showStatus('connecting', 'connecting', 'Connecting\u2026');
    var ws = new WebSocket(websocketURL(), ['binary']);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    var opened = false;
    var heard = false;
    var quietTimer = null;
    // A session starts with the console's recent output (when the guest
    // has a console log): after a reconnect that output replaces the old
    // screen rather than repeating it. Until something arrives, the old
    // screen stays.
    var resetOnFirstData = everOpened;

    ws.onopen = function () {
      opened = true;
      everOpened = true;
      if (mode === 'take_over') {
        // Taken: a reconnect is the writer's, not a second take-over.
        mode = 'write';
      }
      if (mode === 'view') {
        showStatus('connected', 'watching', 'Watching (read-only)');
        return;
      }
      showStatus('connected', 'connected', 'Connected');
      ws.send(JSON.stringify({permissions: true}));
      quietTimer = setTimeout(function () {
        if (socket === ws && !heard && mode !== 'view') {
          showStatus('connected', 'quiet', 'Connected',
                     'Nothing from the guest yet: press Enter for a prompt.');
        }
      }, QUIET_GUEST_MS);
      term.focus();
    };
    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') {
        // Console bytes are binary frames; text is the proxy's notes.
        proxyNote(ev.data);
        return;
      }
      if (!heard) {
        heard = true;
        if (resetOnFirstData) {
          term.reset();
        }
        if (body.dataset.reason === 'quiet' && mode !== 'view') {
          showStatus('connected', 'connected', 'Connected');
        }
      }
      term.write(new Uint8Array(ev.data));
    };
    ws.onclose = function (ev) {
      clearTimeout(quietTimer);
      socket = null;
      var hadFocus = container.contains(document.activeElement);
      var done = function () {
        if (hadFocus && !reconnectButton.hidden) {
          reconnectButton.focus();
        }
      };
      if (!opened && ev.code === 1006) {
        // A refused upgrade tells the browser nothing: ask the proxy why.
        explainRefusal().then(done);
        return;
      }
      var known = CLOSE_TEXTS[ev.code] ||
          ['closed', 'Disconnected (code ' + ev.code + ')'];
      var text = ev.reason || known[1];
      var key = known[0];
      var needsNewURL = key === 'expired' ||
          FINAL_ENDINGS.indexOf(key) !== -1;
      showStatus('disconnected', key, text,
                 needsNewURL && !/new console URL/i.test(text) ?
                     NEW_URL_HINT : '');
      done();
    };
  }

  function explainRefusal() {
    return fetch(consolePath(), {
      headers: {'X-Serialproxy-Check': '1'},
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'manual'
    }).then(function (response) {
      var type = response.headers.get('Content-Type') || '';
      if (type.indexOf('text/plain') !== 0) {
        // A proxy without the check answers with the page itself.
        return [response.status, null];
      }
      return response.text().then(function (text) {
        return [response.status, text.trim().slice(0, 300)];
      });
    }).then(function (answer) {
      var status = answer[0];
      var reason = answer[1];
      if (reason && /watch-only/.test(reason)) {
        // A watch-only URL: never offer to take over with it.
        watchOnly = true;
        mode = 'view';
      }
      if (reason === null) {
        showStatus('disconnected', 'lost', 'Could not connect',
                   'The proxy gave no reason.');
      } else if (status === 401) {
        // The proxy's reason is shown unless it only says the same.
        var said = /expired|invalid/i.test(reason) ? '' :
            reason.replace(/[.\s]+$/, '') + '. ';
        showStatus('disconnected', 'expired', 'Token expired or invalid',
                   said + NEW_URL_HINT);
      } else if (status === 409) {
        showStatus('disconnected', 'in-use',
                   withLocalTime(reason || 'Console in use'));
      } else if (status === 403) {
        showStatus('disconnected', 'refused', 'Refused by the proxy',
                   reason);
      } else if (status === 429) {
        showStatus('disconnected', 'busy', 'Too many console sessions',
                   reason);
      } else if (status === 503) {
        // The console, a backend or the proxy's capacity: the reason says.
        showStatus('disconnected', 'unavailable', 'Console unavailable',
                   reason);
      } else if (status === 200) {
        showStatus('disconnected', 'lost', 'Could not connect',
                   'The console is free now; try again.');
      } else {
        showStatus('disconnected', 'refused',
                   'Could not connect (HTTP ' + status + ')', reason);
      }
    }, function () {
      showStatus('disconnected', 'lost', 'Connection lost',
                 'The console proxy cannot be reached.');
    });
  }

  reconnectButton.addEventListener('click', connect);
  watchButton.addEventListener('click', function () {
    mode = 'view';
    connect();
  });
  takeOverButton.addEventListener('click', function () {
    mode = 'take_over';
    connect();
  });

  window.addEventListener('beforeunload', function (ev) {
    // Ctrl+W outside full screen closes the tab: ask first.
    if (socket && socket.readyState === WebSocket.OPEN) {
      ev.preventDefault();
      ev.returnValue = '';
    }
  });

  if (hasToken) {
    connect();
  } else {
    showStatus('disconnected', 'no-token',
               'No console token in this address',
               'The page removes it from the address bar after loading; ' +
               'open the console URL you were given again.');
  }
  term.focus();
}());
