// Where the page is in the console's stream, so a new session resumes
// there instead of replacing the screen.
//
// Offsets count the bytes the guest printed since its console log
// began, as the history API counts them. The page's first session asks
// the proxy for them (offsets=1); the proxy then sends one text note
// before any console byte:
//   {"stream": {"offset": S, "requested": N, "first_available": F,
//               "history": H}}
// and every binary byte after it is the stream's next byte, so the page
// stands at S + the bytes it received. A later session asks for
// resume=<that offset> and continues the screen. The first H bytes after
// the note are kept history, not live output: the page shows them but
// must not answer the terminal queries in them (ESC[6n and the like),
// which the guest asked long ago. A proxy that cannot tell (offset null)
// or that sends no note (an older one) gets what it got before: the page
// counts nothing and resumes nothing.
//
// Loaded by the page (window.SerialproxyStreamResume) and by the unit
// tests under Node (module.exports).
(function (root) {
  'use strict';

  function isOffset(value) {
    return typeof value === 'number' && isFinite(value) && value >= 0 &&
        Math.floor(value) === value;
  }

  function StreamPosition() {
    // The offset after the last byte shown; null while unknown.
    this.offset = null;
    // This session: what it asked for, whether its note came, whether
    // its bytes are counted, and how many history bytes are still due.
    this.asked = null;
    this.noted = false;
    this.counting = false;
    this.historyLeft = 0;
  }

  // The query of a new session's URL: [name, value].
  StreamPosition.prototype.query = function () {
    return this.offset === null ? ['offsets', '1'] :
        ['resume', String(this.offset)];
  };

  // A session is opening with query(): nothing counts until its note.
  StreamPosition.prototype.sessionStarted = function () {
    this.asked = this.offset;
    this.noted = false;
    this.counting = false;
    this.historyLeft = 0;
  };

  // The proxy's note (the object under "stream"). Returns what it means
  // for the screen:
  //   resumed  the bytes continue what is shown (no reset);
  //   lost     bytes between the offset asked for and the first one
  //            still kept, which the screen will never show (0: none);
  //   restarted the console's log began again (the server rebooted).
  StreamPosition.prototype.note = function (stream) {
    var asked = this.asked;
    this.noted = true;
    this.historyLeft = 0;
    if (!stream || typeof stream !== 'object' || !isOffset(stream.offset)) {
      // The proxy cannot tell offsets for this session.
      this.offset = null;
      this.counting = false;
      return {resumed: false, lost: 0, restarted: false};
    }
    this.offset = stream.offset;
    this.counting = true;
    this.historyLeft = isOffset(stream.history) ? stream.history : 0;
    var resumed = asked !== null && isOffset(stream.requested);
    return {
      resumed: resumed,
      lost: resumed && stream.offset > stream.requested ?
          stream.offset - stream.requested : 0,
      restarted: resumed && stream.offset < stream.requested
    };
  };

  // n console bytes arrived: how many of them (from the first) are
  // history, which the page writes without answering its queries.
  StreamPosition.prototype.received = function (n) {
    if (!this.noted) {
      // Console bytes before any note: a proxy that does not speak
      // offsets. Nothing this session shows can be resumed.
      this.noted = true;
      this.offset = null;
      this.counting = false;
    }
    if (!this.counting) {
      return 0;
    }
    var history = Math.min(n, this.historyLeft);
    this.historyLeft -= history;
    this.offset += n;
    return history;
  };

  // xterm.js's answers to a terminal's queries, as its onData gives
  // them: cursor position and status reports, device attributes, window
  // reports, mode reports (CSI ... R c n t x y), DCS replies (DECRQSS,
  // XTGETTCAP) and OSC colour reports. Keys a person types are none of
  // these, but for a modified F3 that reads like a cursor report, which
  // only matters while history is being written.
  var ANSWERS = new RegExp(
      '^(?:\\x1b\\[[?>=]?[0-9;]*\\$?[Rcntxy]' +
      '|\\x1bP[^\\x1b]*\\x1b\\\\' +
      '|\\x1b\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\))+$');

  function isTerminalAnswer(data) {
    return typeof data === 'string' && ANSWERS.test(data);
  }

  // The pauses before a page whose connection dropped opens it again by
  // itself. Each is drawn between half and the whole of its step: the
  // pages a restarted proxy dropped all at once come back spread over
  // that half, not in one burst a step later.
  var RECONNECT_STEPS_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  // The pause before try number retry (0 first), or null when the tries
  // are used up. random: Math.random unless a test gives its own.
  function reconnectDelayMs(retry, random) {
    if (retry >= RECONNECT_STEPS_MS.length) {
      return null;
    }
    var step = RECONNECT_STEPS_MS[retry];
    return Math.round(step / 2 + (random || Math.random)() * step / 2);
  }

  var api = {
    RECONNECT_STEPS_MS: RECONNECT_STEPS_MS,
    StreamPosition: StreamPosition,
    isTerminalAnswer: isTerminalAnswer,
    reconnectDelayMs: reconnectDelayMs
  };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.SerialproxyStreamResume = api;
  }
}(this));
