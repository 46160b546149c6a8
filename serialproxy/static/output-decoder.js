// The console's output, bytes to text, across websocket frames.
//
// A serial line knows nothing of characters: the proxy relays bytes as
// they come, so a multi-byte UTF-8 character may be cut between two
// frames, or between the console's replayed history and its live output.
// One streaming TextDecoder per session keeps the cut part until the rest
// arrives; invalid bytes still come out as U+FFFD, as the guest sent no
// character there. A new session (a reconnect) starts a new decoder.
//
// Loaded by the page (window.SerialproxyOutputDecoder) and by the unit
// tests under Node (module.exports).
(function (root) {
  'use strict';

  function OutputDecoder() {
    this.decoder = new TextDecoder('utf-8', {fatal: false});
  }

  // Text of these bytes, less an incomplete character at their end,
  // which the next call completes.
  OutputDecoder.prototype.decode = function (bytes) {
    return this.decoder.decode(bytes, {stream: true});
  };

  // What the stream left pending (a character never completed): U+FFFD,
  // or nothing. The decoder is ready for a new stream afterwards.
  OutputDecoder.prototype.end = function () {
    return this.decoder.decode();
  };

  if (typeof module === 'object' && module.exports) {
    module.exports = OutputDecoder;
  } else {
    root.SerialproxyOutputDecoder = OutputDecoder;
  }
}(this));
