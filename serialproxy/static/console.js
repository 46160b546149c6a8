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
  var OutputDecoder = window.SerialproxyOutputDecoder;
  var Settings = window.SerialproxyPageSettings;
  var Paced = window.SerialproxyPacedSend;
  var Resume = window.SerialproxyStreamResume;
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
  // A connection that dropped (no close frame: a network gone, a proxy
  // killed) is opened again by itself after growing, jittered pauses
  // (Resume.reconnectDelayMs), resuming the screen where it was; then the
  // Reconnect button is left.
  // Refusals of a reconnect that waiting may cure: the proxy unreachable
  // or busy, the console still held by the session that dropped until
  // its proxy notices.
  var RETRY_REASONS = ['lost', 'in-use', 'unavailable', 'busy'];
  // Asks the proxy for the console's kept history (log_download.py).
  var DOWNLOAD_HEADER = 'X-Serialproxy-Download';
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
  var fitGuestButton = document.getElementById('fit-guest');
  var sendTextOpen = document.getElementById('send-text-open');
  var settingsButton = document.getElementById('settings-open');
  var settingsMenu = document.getElementById('settings-menu');
  var keyBar = document.getElementById('key-bar');
  var keySysrq = document.getElementById('key-sysrq');
  // A touch screen without a mouse: a phone or a tablet, whose on-screen
  // keyboard has no Esc, Tab, Ctrl or arrows.
  var touchScreen = window.matchMedia('(pointer: coarse)').matches;
  body.classList.toggle('touch', touchScreen);
  // The key bar's Ctrl and Alt: pressed until the next key.
  var modifiers = {ctrl: false, alt: false};

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
  // extra: [name, value] the websocket's URL adds (resume, offsets).
  function consolePath(extra) {
    var query = new URLSearchParams(consoleQuery);
    // The page's own settings are the page's: the proxy hears none.
    Object.keys(Settings.QUERY_NAMES).forEach(function (name) {
      query.delete(name);
    });
    if (mode === 'write') {
      query.delete('mode');
    } else {
      query.set('mode', mode);
    }
    if (extra) {
      query.set(extra[0], extra[1]);
    }
    return location.pathname + '?' + query.toString();
  }
  function websocketURL(extra) {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') +
        '//' + location.host + consolePath(extra);
  }

  // --- status line -------------------------------------------------------
  function showWriterTools(on) {
    fitGuestButton.hidden = !on;
    sendTextOpen.hidden = !on;
    keyBar.hidden = !on || !touchScreen;
    if (!on) {
      setModifiers(false);
    }
  }

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
    // Tools that type into the guest: a writer's, while connected.
    showWriterTools(state === 'connected' && mode !== 'view');
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
    keySysrq.hidden = sysrqButton.hidden;
    if (sysrqButton.hidden) {
      showMenu(false);
      if (confirmDialog.open) {
        confirmDialog.close();
      }
    }
  }

  function showSettings(open) {
    settingsMenu.hidden = !open;
    settingsButton.setAttribute('aria-expanded', String(open));
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
    if (!sysrqMenu.hidden && !sysrqMenu.parentNode.contains(ev.target) &&
        ev.target !== keySysrq) {
      showMenu(false);
    }
    if (!settingsMenu.hidden &&
        !settingsMenu.parentNode.contains(ev.target)) {
      showSettings(false);
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
  if (typeof Terminal === 'undefined' || typeof FitAddon === 'undefined' ||
      typeof SearchAddon === 'undefined' || !OutputDecoder || !Settings ||
      !Paced || !Resume) {
    showStatus('disconnected', 'no-xterm',
               'The terminal scripts did not load',
               'The proxy could not serve xterm.js; its operator must ' +
               'install serialproxy from a wheel or sdist, or run npm ' +
               'ci in its source tree (see the proxy\'s log).');
    return;
  }

  // --- settings: this browser's, from localStorage and the query --------
  function readStored() {
    try {
      return window.localStorage.getItem(Settings.STORAGE_KEY);
    } catch (e) {
      return null;  // storage blocked (a framed page, private mode)
    }
  }
  function store(name, value) {
    try {
      window.localStorage.setItem(
          Settings.STORAGE_KEY,
          Settings.withChange(readStored(), name, value));
    } catch (e) {
      // Not kept past this page; it still applies here.
    }
  }
  var settings = Settings.effective(readStored(), params);

  var term = new Terminal({
    cursorBlink: true,
    fontFamily: '"DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, ' +
                'monospace',
    fontSize: settings.fontSize,
    scrollback: settings.scrollback,
    cursorStyle: settings.cursorStyle,
    screenReaderMode: settings.screenReader,
    theme: Settings.TERMINAL_THEMES[settings.theme],
    // The search addon highlights its matches with decorations.
    allowProposedApi: true
  });
  body.dataset.theme = settings.theme;
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
    if (!settings.copyOnSelect) {
      return;
    }
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
    if (ctrlShift && ev.code === 'KeyF') {
      // Search the scrollback, not the guest's Ctrl+F.
      ev.preventDefault();
      if (ev.type === 'keydown') {
        openSearch();
      }
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
  var decoder = null;
  // Where the page is in the console's stream (stream-resume.js): a
  // reconnect continues the screen from there.
  var position = new Resume.StreamPosition();
  // Writes of kept history xterm.js is parsing now: its answers to the
  // queries in them are not sent (the guest asked them long ago).
  var replaying = 0;
  // The automatic reconnects after a drop: how many so far, the next.
  var retries = 0;
  var retryTimer = null;
  // Whether the last session dropped (no close frame) and no session
  // opened since.
  var dropped = false;

  // Whether the bytes went: a spectator's keys would be dropped by the
  // proxy anyway.
  function send(bytes) {
    if (mode !== 'view' && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(bytes);
      return true;
    }
    return false;
  }
  // websockify refuses text frames: every keystroke goes as binary UTF-8.
  term.onData(function (data) {
    if (replaying && Resume.isTerminalAnswer(data)) {
      return;
    }
    send(encoder.encode(keyBarModified(data)));
  });
  term.onBinary(function (data) {
    if (replaying) {
      return;  // only xterm.js's mouse reports come this way
    }
    var bytes = new Uint8Array(data.length);
    for (var i = 0; i < data.length; i++) {
      bytes[i] = data.charCodeAt(i) & 0xff;
    }
    send(bytes);
  });

  // History text: xterm.js parses writes in order, each whole, so the
  // empty write's callback runs right before this text is parsed and the
  // text's own right after.
  function writeHistory(text) {
    term.write('', function () {
      replaying += 1;
    });
    term.write(text, function () {
      replaying -= 1;
    });
  }

  function cancelRetry() {
    clearTimeout(retryTimer);
    retryTimer = null;
  }

  // Another try after a drop, later; false when the tries are used up.
  function retryLater() {
    var delay = Resume.reconnectDelayMs(retries);
    if (delay === null) {
      return false;
    }
    retries += 1;
    cancelRetry();
    retryTimer = setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
    return Math.max(1, Math.round(delay / 1000));
  }

  function connect() {
    cancelRetry();
    if (socket) {
      return;
    }
    showStatus('connecting', 'connecting', 'Connecting\u2026');
    position.sessionStarted();
    var ws = new WebSocket(websocketURL(position.query()), ['binary']);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    var opened = false;
    var heard = false;
    var quietTimer = null;
    // A session that cannot resume starts with the console's recent
    // output (when the guest has a console log): after a reconnect that
    // output replaces the old screen rather than repeating it. Until
    // something arrives, the old screen stays. A resumed one continues
    // the screen.
    var resetOnFirstData = everOpened;
    // One stream of output per session: replayed history, then live.
    decoder = new OutputDecoder();
    var sessionDecoder = decoder;

    ws.onopen = function () {
      opened = true;
      everOpened = true;
      retries = 0;
      dropped = false;
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
    function streamNote(stream) {
      var meant = position.note(stream);
      if (meant.resumed) {
        resetOnFirstData = false;
      }
      if (meant.lost) {
        showCommandStatus(kilobytes(meant.lost) + ' of output printed ' +
                          'meanwhile is no longer kept: the screen ' +
                          'skips it', 'failed');
      } else if (meant.restarted) {
        showCommandStatus('The console log began again (the server ' +
                          'restarted?): its new output follows', 'busy');
      }
    }
    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') {
        // Console bytes are binary frames; text is the proxy's notes.
        var note = null;
        try {
          note = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        if (note && typeof note === 'object' && 'stream' in note) {
          streamNote(note.stream);
          return;
        }
        proxyNote(ev.data);
        return;
      }
      var bytes = new Uint8Array(ev.data);
      var history = position.received(bytes.length);
      if (!heard) {
        heard = true;
        if (resetOnFirstData) {
          term.reset();
        }
        if (body.dataset.reason === 'quiet' && mode !== 'view') {
          showStatus('connected', 'connected', 'Connected');
        }
      }
      if (history) {
        writeHistory(sessionDecoder.decode(bytes.subarray(0, history)));
        bytes = bytes.subarray(history);
      }
      if (bytes.length) {
        term.write(sessionDecoder.decode(bytes));
      }
    };
    ws.onclose = function (ev) {
      clearTimeout(quietTimer);
      socket = null;
      // A character the guest never finished: shown as U+FFFD.
      term.write(sessionDecoder.end());
      var hadFocus = container.contains(document.activeElement);
      var done = function () {
        if (hadFocus && !reconnectButton.hidden) {
          reconnectButton.focus();
        }
      };
      if (!opened && ev.code === 1006) {
        // A refused upgrade tells the browser nothing: ask the proxy why.
        explainRefusal().then(function () {
          // Reconnecting after a drop: try again while waiting may help.
          if (retries && RETRY_REASONS.indexOf(body.dataset.reason) !== -1) {
            var again = retryLater();
            if (again) {
              statusText.textContent += ' Trying again in ' + again +
                  ' s\u2026';
            }
          }
          done();
        });
        return;
      }
      var known = CLOSE_TEXTS[ev.code] ||
          ['closed', 'Disconnected (code ' + ev.code + ')'];
      var text = ev.reason || known[1];
      var key = known[0];
      var needsNewURL = key === 'expired' ||
          FINAL_ENDINGS.indexOf(key) !== -1;
      // Dropped without a close frame: nobody ended it, so the page
      // opens it again by itself. Every ending meant (an operator, the
      // access switch, a take-over, a time limit) comes with a frame.
      dropped = ev.code === 1006;
      var again = dropped ? retryLater() : false;
      showStatus('disconnected', key, text,
                 needsNewURL && !/new console URL/i.test(text) ?
                     NEW_URL_HINT :
                     again ? 'Reconnecting in ' + again + ' s\u2026' : '');
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

  // --- the key bar: keys a phone's keyboard has no way to type ----------
  var KEY_TEXT = {esc: '\x1b', tab: '\t'};
  var ARROW_LETTERS = {up: 'A', down: 'B', right: 'C', left: 'D'};

  function setModifiers(on, which) {
    ['ctrl', 'alt'].forEach(function (name) {
      if (!which || which === name) {
        modifiers[name] = on;
        var button = keyBar.querySelector('[data-modifier="' + name + '"]');
        button.setAttribute('aria-pressed', String(on));
      }
    });
  }

  // Ctrl with a letter or one of @[\]^_ is its C0 control code, as a
  // keyboard's Ctrl makes it; with any other key Ctrl changes nothing.
  function withCtrl(text) {
    var code = text.toUpperCase().charCodeAt(0);
    if (code >= 64 && code <= 95) {
      return String.fromCharCode(code - 64);
    }
    if (text === ' ') {
      return '\x00';
    }
    if (text === '?') {
      return '\x7f';
    }
    return text;
  }

  // A key typed after the key bar's Ctrl or Alt, as those make it (Alt:
  // ESC first); they then let go. Only a single character is a key: a
  // paste or a sequence goes as it is, and they stay pressed.
  function keyBarModified(data) {
    if (!modifiers.ctrl && !modifiers.alt) {
      return data;
    }
    if (Array.from(data).length !== 1) {
      return data;  // a paste, or xterm.js answering the guest
    }
    var out = modifiers.ctrl ? withCtrl(data) : data;
    if (modifiers.alt) {
      out = '\x1b' + out;
    }
    setModifiers(false);
    return out;
  }

  function arrowText(name) {
    var letter = ARROW_LETTERS[name];
    if (modifiers.ctrl || modifiers.alt) {
      // xterm's modified cursor keys: 1 + 2 (Alt) + 4 (Ctrl).
      return '\x1b[1;' + (1 + (modifiers.alt ? 2 : 0) +
                          (modifiers.ctrl ? 4 : 0)) + letter;
    }
    return (term.modes.applicationCursorKeysMode ? '\x1bO' : '\x1b[') +
        letter;
  }

  // Buttons of the bar must not take the focus from the terminal: that
  // would close the on-screen keyboard.
  keyBar.addEventListener('mousedown', function (ev) {
    ev.preventDefault();
  });
  keyBar.addEventListener('click', function (ev) {
    var button = ev.target.closest('button');
    if (!button || button.id) {
      return;  // the bar's own tools have their own handlers
    }
    var modifier = button.dataset.modifier;
    var key = button.dataset.key;
    if (modifier) {
      setModifiers(!modifiers[modifier], modifier);
    } else if (ARROW_LETTERS[key]) {
      var text = arrowText(key);
      setModifiers(false);
      send(encoder.encode(text));
    } else if (KEY_TEXT[key]) {
      var alt = modifiers.alt ? '\x1b' : '';
      setModifiers(false);
      send(encoder.encode(alt + KEY_TEXT[key]));
    } else if (key) {
      send(encoder.encode(keyBarModified(key)));
    }
    term.focus();
  });
  keySysrq.addEventListener('click', function () {
    sysrqButton.click();
  });

  // Touch selection in a terminal is a fight with its scrolling: the
  // screen's text in a plain text box, where a phone selects as usual.
  var selectDialog = document.getElementById('select-text');
  var selectContent = document.getElementById('select-text-content');
  var SELECT_LINES = 1000;
  document.getElementById('key-select').addEventListener('click', function () {
    var buffer = term.buffer.active;
    var lines = [];
    for (var i = Math.max(0, buffer.length - SELECT_LINES);
         i < buffer.length; i++) {
      lines.push(buffer.getLine(i).translateToString(true));
    }
    selectContent.value = lines.join('\n').replace(/\s+$/, '') + '\n';
    selectDialog.showModal();
    selectContent.scrollTop = selectContent.scrollHeight;
  });
  selectDialog.addEventListener('close', function () {
    term.focus();
  });
  document.getElementById('key-paste').addEventListener('click', function () {
    openSendText('');
    // With the clipboard's permission its text is there at once;
    // otherwise a long press in the box pastes it.
    if (navigator.clipboard && navigator.clipboard.readText) {
      navigator.clipboard.readText().then(function (text) {
        if (text && !sendInput.value) {
          sendInput.value = text;
        }
      }, function () {});
    }
  });

  // --- Send text: typed into the console a chunk at a time ---------------
  var sendDialog = document.getElementById('send-text');
  var sendInput = document.getElementById('send-text-input');
  var sendChunk = document.getElementById('send-chunk');
  var sendDelay = document.getElementById('send-delay');
  var sendProgress = document.getElementById('send-progress');
  var sendStatus = document.getElementById('send-text-status');
  var sendGo = document.getElementById('send-text-go');
  var sendStop = document.getElementById('send-text-stop');
  sendChunk.value = Paced.DEFAULT_CHUNK_BYTES;
  sendDelay.value = Paced.DEFAULT_DELAY_MS;
  var sendDigest = null;

  function kilobytes(bytes) {
    return (bytes / 1024).toFixed(1) + ' KB';
  }
  function sendTextProgress(sent, total) {
    sendProgress.max = total;
    sendProgress.value = sent;
    sendStatus.textContent = 'Sending: ' + kilobytes(sent) + ' of ' +
        kilobytes(total);
    sendTextOpen.textContent = 'Send text ' +
        Math.floor(100 * sent / total) + '%';
  }
  function sendTextEnded(reason) {
    var sent = Number(sendProgress.value);
    var total = Number(sendProgress.max);
    sendGo.hidden = false;
    sendStop.hidden = true;
    sendTextOpen.textContent = 'Send text';
    sendStatus.dataset.state = reason;
    if (reason === 'done') {
      sendStatus.textContent = 'Sent ' + total + ' bytes.';
      // What the guest's sha256sum of the text should say.
      sendDigest.then(function (hex) {
        if (hex && sendStatus.dataset.state === 'done') {
          sendStatus.dataset.sha256 = hex;
          sendStatus.textContent += ' SHA-256: ' + hex;
        }
      });
    } else if (reason === 'stopped') {
      sendStatus.textContent = 'Stopped after ' + sent + ' of ' + total +
          ' bytes.';
    } else {
      sendStatus.textContent = 'The connection closed after ' + sent +
          ' of ' + total + ' bytes.';
    }
  }
  var pacedSender = new Paced.PacedSender(
      function (bytes) {
        return send(bytes);
      },
      function () {
        return !socket || socket.bufferedAmount < Paced.MAX_BUFFERED_BYTES;
      },
      sendTextProgress, sendTextEnded);

  function sha256Hex(bytes) {
    if (!window.crypto || !crypto.subtle) {
      return Promise.resolve(null);  // plain http to a remote host
    }
    return crypto.subtle.digest('SHA-256', bytes).then(function (digest) {
      return Array.from(new Uint8Array(digest), function (b) {
        return (b < 16 ? '0' : '') + b.toString(16);
      }).join('');
    }, function () {
      return null;
    });
  }

  function startSending(text) {
    var chunk = Number(sendChunk.value);
    var delay = Number(sendDelay.value);
    if (!text) {
      sendStatus.textContent = 'Nothing to send.';
      return;
    }
    if (!(chunk >= 1) || !(delay >= 0)) {
      sendStatus.textContent = 'Chunk must be 1 byte or more, the pause ' +
          '0 ms or more.';
      return;
    }
    delete sendStatus.dataset.sha256;
    sendStatus.dataset.state = 'sending';
    sendDigest = sha256Hex(Paced.storedBytes(text));
    sendGo.hidden = true;
    sendStop.hidden = false;
    sendProgress.hidden = false;
    pacedSender.start(Paced.typedBytes(text), chunk, delay);
  }

  function openSendText(text) {
    if (!pacedSender.running) {
      sendInput.value = text;
    }
    if (!sendDialog.open) {
      sendDialog.showModal();
    }
    (pacedSender.running ? sendStop : sendInput).focus();
  }
  sendTextOpen.addEventListener('click', function () {
    openSendText(sendInput.value);
  });
  sendGo.addEventListener('click', function () {
    startSending(sendInput.value);
  });
  sendStop.addEventListener('click', function () {
    pacedSender.stop();
    sendGo.focus();
  });
  // Closing the box lets a send go on: the button shows how far it is.
  sendDialog.addEventListener('close', function () {
    term.focus();
  });

  // A large paste through the clipboard may overrun a slow line: ask
  // whether to pace it. Captured before xterm.js takes the paste.
  var PASTE_ASK_BYTES = 1024;
  var pasteAsk = document.getElementById('paste-ask');
  var pendingPaste = null;
  container.addEventListener('paste', function (ev) {
    var text = ev.clipboardData && ev.clipboardData.getData('text/plain');
    if (!text || mode === 'view' ||
        encoder.encode(text).length <= PASTE_ASK_BYTES) {
      return;
    }
    ev.preventDefault();
    ev.stopPropagation();
    pendingPaste = text;
    document.getElementById('paste-ask-text').textContent =
        'The paste holds ' + kilobytes(encoder.encode(text).length) +
        '. A slow serial line, or a guest that is booting, may drop part ' +
        'of it if it comes at once; sent in chunks it takes longer.';
    pasteAsk.returnValue = '';
    pasteAsk.showModal();
  }, true);
  pasteAsk.addEventListener('close', function () {
    var text = pendingPaste;
    pendingPaste = null;
    if (pasteAsk.returnValue === 'now') {
      term.paste(text);
    } else if (pasteAsk.returnValue === 'paced') {
      openSendText(text);
      startSending(text);
      return;
    }
    term.focus();
  });

  // --- Closing a dialog gives the terminal the keys at once ---------------
  // Closing a modal dialog puts the focus back on what had it before
  // (the toolbar button that opened it) and fires 'close' only in a later
  // task: what the user typed in between went to that button, and Enter
  // opened the dialog again. The terminal takes the focus as the dialog
  // closes; the 'close' handlers above still do the rest.
  function closeToTerminal(dialog, returnValue) {
    dialog.close(returnValue);
    if (!document.querySelector('dialog[open]')) {
      term.focus();
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll('dialog'),
                               function (dialog) {
    dialog.addEventListener('click', function (ev) {
      var button = ev.target.closest('button[type="submit"]');
      if (button && dialog.contains(button)) {
        ev.preventDefault();
        closeToTerminal(dialog, button.value);
      }
    });
    dialog.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape' && !ev.isComposing) {
        ev.preventDefault();
        closeToTerminal(dialog, '');
      }
    });
  });

  // --- Fit: the guest told the window's size, only when asked ------------
  fitGuestButton.addEventListener('click', function () {
    send(encoder.encode('stty rows ' + term.rows + ' cols ' + term.cols +
                        '\r'));
    term.focus();
  });

  // --- the settings menu ----------------------------------------------------
  var SETTING_NAMES = Object.keys(Settings.DEFAULTS);
  function settingField(name) {
    return document.getElementById('setting-' + name);
  }
  function showSettingValues() {
    SETTING_NAMES.forEach(function (name) {
      var field = settingField(name);
      if (field.type === 'checkbox') {
        field.checked = settings[name];
      } else {
        field.value = String(settings[name]);
      }
    });
  }
  function applySetting(name, value) {
    settings[name] = value;
    if (name === 'theme') {
      term.options.theme = Settings.TERMINAL_THEMES[value];
      body.dataset.theme = value;
    } else if (name === 'screenReader') {
      term.options.screenReaderMode = value;
    } else if (name !== 'copyOnSelect') {
      term.options[name] = value;  // fontSize, cursorStyle, scrollback
    }
    scheduleFit();
  }
  settingsMenu.addEventListener('change', function (ev) {
    var name = ev.target.id.replace(/^setting-/, '');
    var value = Settings.valid(name, ev.target.type === 'checkbox' ?
        ev.target.checked : ev.target.value);
    if (value === undefined) {
      showSettingValues();  // out of range: back to what applies
      return;
    }
    applySetting(name, value);
    store(name, value);
  });
  settingsMenu.addEventListener('submit', function (ev) {
    ev.preventDefault();
  });
  settingsMenu.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') {
      showSettings(false);
      settingsButton.focus();
    }
  });
  settingsButton.addEventListener('click', function () {
    showSettings(settingsMenu.hidden);
    if (!settingsMenu.hidden) {
      showSettingValues();
      settingField('fontSize').focus();
    }
  });

  // --- search in the scrollback (xterm's search addon) --------------------
  var searchBar = document.getElementById('search-bar');
  var searchOpen = document.getElementById('search-open');
  var searchInput = document.getElementById('search-input');
  var searchCase = document.getElementById('search-case');
  var searchCount = document.getElementById('search-count');
  var searchAddon = new SearchAddon.SearchAddon();
  term.loadAddon(searchAddon);
  // Every match highlighted, the current one stronger; in the overview
  // ruler too.
  var SEARCH_DECORATIONS = {
    matchBackground: '#5c4a00',
    matchBorder: '#f2cc60',
    matchOverviewRuler: '#f2cc60',
    activeMatchBackground: '#1f5fbf',
    activeMatchBorder: '#ffffff',
    activeMatchColorOverviewRuler: '#6cb6ff'
  };
  // Where the current match is. A change of the terminal's rows (the
  // bar taking one, a phone's keyboard opening) clears xterm's selection,
  // and the search addon steps on from the selection: without it Next
  // starts over at the first match, and the addon's refresh after the
  // resize jumps to the last. The page puts the match back.
  var currentMatch = null;
  function keepCurrentMatch() {
    var at = term.getSelectionPosition();
    if (!searchBar.hidden && at) {
      currentMatch = {start: at.start, end: at.end, cols: term.cols};
    }
  }
  function restoreCurrentMatch() {
    // After a change of columns the lines reflow and the place is gone.
    if (searchBar.hidden || !currentMatch || term.hasSelection() ||
        currentMatch.cols !== term.cols) {
      return;
    }
    term.select(currentMatch.start.x, currentMatch.start.y,
                (currentMatch.end.y - currentMatch.start.y) * term.cols +
                currentMatch.end.x - currentMatch.start.x);
  }
  // The resize's listeners clear the selection after this one runs.
  term.onResize(function () {
    Promise.resolve().then(restoreCurrentMatch);
  });
  term.onSelectionChange(keepCurrentMatch);
  searchAddon.onDidChangeResults(function (results) {
    if (results.resultIndex < 0) {
      currentMatch = null;
    }
    if (!searchInput.value) {
      searchCount.textContent = '';
    } else if (!results.resultCount) {
      searchCount.textContent = 'No match';
    } else if (results.resultIndex < 0) {
      searchCount.textContent = 'More than ' + results.resultCount +
          ' matches';
    } else {
      searchCount.textContent = (results.resultIndex + 1) + ' of ' +
          results.resultCount;
    }
    searchBar.dataset.index = results.resultIndex;
    searchBar.dataset.count = results.resultCount;
  });

  function searchOptions(incremental) {
    return {caseSensitive: searchCase.checked, incremental: incremental,
            decorations: SEARCH_DECORATIONS};
  }
  function findMatch(backwards, incremental) {
    var text = searchInput.value;
    if (!text) {
      searchAddon.clearDecorations();
      searchCount.textContent = '';
      return;
    }
    restoreCurrentMatch();
    var found = backwards ?
        searchAddon.findPrevious(text, searchOptions(false)) :
        searchAddon.findNext(text, searchOptions(incremental));
    if (!found) {
      searchCount.textContent = 'No match';
    }
  }
  function showSearch(open) {
    searchBar.hidden = !open;
    searchOpen.setAttribute('aria-expanded', String(open));
    scheduleFit();  // the bar takes a row from the terminal
    if (open) {
      searchInput.focus();
      searchInput.select();
    } else {
      currentMatch = null;
      searchAddon.clearDecorations();
      term.clearSelection();
      searchCount.textContent = '';
      term.focus();
    }
  }
  function openSearch() {
    var selected = term.getSelection();
    if (selected && selected.indexOf('\n') === -1) {
      searchInput.value = selected;
    }
    showSearch(true);
    if (searchInput.value) {
      findMatch(false, true);
    }
  }
  searchOpen.addEventListener('click', function () {
    if (searchBar.hidden) {
      openSearch();
    } else {
      showSearch(false);
    }
  });
  document.getElementById('key-search').addEventListener('click',
                                                         openSearch);
  searchInput.addEventListener('input', function () {
    findMatch(false, true);
  });
  searchCase.addEventListener('change', function () {
    findMatch(false, false);
  });
  searchBar.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      showSearch(false);
    } else if (ev.key === 'Enter' && ev.target === searchInput) {
      ev.preventDefault();
      findMatch(ev.shiftKey, false);
    }
  });
  searchBar.addEventListener('submit', function (ev) {
    ev.preventDefault();
  });
  // Buttons of the bar keep the focus in the box: a phone's keyboard
  // stays open while it steps through the matches.
  searchBar.addEventListener('mousedown', function (ev) {
    if (ev.target.closest('button')) {
      ev.preventDefault();
    }
  });
  document.getElementById('search-next').addEventListener('click',
      function () {
        findMatch(false, false);
      });
  document.getElementById('search-previous').addEventListener('click',
      function () {
        findMatch(true, false);
      });
  document.getElementById('search-close').addEventListener('click',
      function () {
        showSearch(false);
      });

  // --- Download log: the console's kept history as a file ----------------
  // The proxy answers it to the page's own URL with the token the page
  // holds (never put in a link), as a file the page then saves.
  var downloadButton = document.getElementById('download-log');
  downloadButton.hidden = !hasToken;

  function attachmentName(disposition) {
    var match = /filename="?([^";]+)"?/.exec(disposition || '');
    // Only a plain name: the proxy's is console-<uuid>.log.
    return match && /^[\w.-]+$/.test(match[1]) ? match[1] : 'console.log';
  }
  function saveFile(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () {
      URL.revokeObjectURL(url);
    }, 60000);
  }
  function downloadLog() {
    var headers = {};
    headers[DOWNLOAD_HEADER] = 'log';
    downloadButton.disabled = true;
    showCommandStatus('Downloading the console log\u2026', 'busy');
    fetch(consolePath(), {
      headers: headers,
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'manual'
    }).then(function (response) {
      var type = response.headers.get('Content-Type') || '';
      var disposition = response.headers.get('Content-Disposition');
      if (response.ok && !disposition) {
        // A proxy from before Download log answers with the page.
        throw new Error('this console proxy cannot download logs');
      }
      if (!response.ok) {
        var said = type.indexOf('text/plain') === 0 ? response.text() :
            Promise.resolve('');
        return said.then(function (text) {
          throw new Error((text.trim().slice(0, 300) ||
                           'HTTP ' + response.status)
                          .replace(/[.\s]+$/, ''));
        });
      }
      return response.blob().then(function (blob) {
        saveFile(new Blob([blob], {type: 'text/plain'}),
                 attachmentName(disposition));
        showCommandStatus('Console log saved: ' + kilobytes(blob.size),
                          'sent');
      });
    }).catch(function (err) {
      // fetch's own TypeError: the answer broke off (the proxy cuts it
      // short when the log rotates under it) or never came.
      showCommandStatus('Download log failed: ' +
                        (err instanceof TypeError || !err.message ?
                             'the connection broke off; try again' :
                             err.message), 'failed');
    }).then(function () {
      downloadButton.disabled = false;
    });
  }
  downloadButton.addEventListener('click', downloadLog);

  // --- a phone's on-screen keyboard: the page shrinks to what is visible -
  if (touchScreen && window.visualViewport) {
    var followViewport = function () {
      var style = document.documentElement.style;
      style.setProperty('--page-height',
                        Math.round(window.visualViewport.height) + 'px');
      style.setProperty('--page-top',
                        Math.round(window.visualViewport.offsetTop) + 'px');
    };
    window.visualViewport.addEventListener('resize', followViewport);
    window.visualViewport.addEventListener('scroll', followViewport);
    followViewport();
  }

  reconnectButton.addEventListener('click', function () {
    // After a drop, a refusal that waiting cures (the console still
    // held by the dropped session) is tried again by itself as well.
    retries = dropped ? 1 : 0;
    connect();
  });
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
