// "Send text": a text typed into the console in chunks, a pause between
// them, so that a slow serial line, a guest busy booting or a bootloader
// reading a few bytes at a time keeps all of it.
//
// The proxy's own limits are unchanged: this only slows the page down.
// Newlines are typed as Enter (CR), which a guest's tty turns back into
// LF (icrnl), and a chunk never cuts a UTF-8 character.
//
// Loaded by the page (window.SerialproxyPacedSend) and by the unit tests
// under Node (module.exports).
(function (root) {
  'use strict';

  // At 115200 baud a serial line carries 11520 bytes a second: 128 bytes
  // every 20 ms is about half of that, room for the guest's echo.
  var DEFAULT_CHUNK_BYTES = 128;
  var DEFAULT_DELAY_MS = 20;
  // Chunks wait while the websocket still holds this much unsent.
  var MAX_BUFFERED_BYTES = 16384;

  function isContinuation(byte) {
    return (byte & 0xc0) === 0x80;
  }

  // The text as the keys Enter and the characters would type it.
  function typedBytes(text) {
    return new TextEncoder().encode(text.replace(/\r\n?|\n/g, '\r'));
  }

  // The text as a guest's tty stores it (CR back to LF): what the page's
  // digest is of, so that it matches sha256sum of what the guest wrote.
  function storedBytes(text) {
    return new TextEncoder().encode(text.replace(/\r\n?/g, '\n'));
  }

  // Byte offsets where the chunks of bytes end: at most maxBytes apart,
  // at a character's start, but a character longer than maxBytes whole.
  function chunkEnds(bytes, maxBytes) {
    var size = Math.max(1, Math.floor(maxBytes));
    var ends = [];
    var start = 0;
    while (start < bytes.length) {
      var end = Math.min(start + size, bytes.length);
      while (end < bytes.length && end > start && isContinuation(bytes[end])) {
        end -= 1;
      }
      if (end === start) {
        end = start + 1;
        while (end < bytes.length && isContinuation(bytes[end])) {
          end += 1;
        }
      }
      ends.push(end);
      start = end;
    }
    return ends;
  }

  // Sends bytes in chunks through send(chunk), which says false when the
  // connection is gone; canSend() says whether to wait a round first
  // (unsent data piling up). onProgress(sent, total) after each chunk,
  // onEnd('done' | 'stopped' | 'disconnected') once.
  function PacedSender(send, canSend, onProgress, onEnd) {
    this.send = send;
    this.canSend = canSend;
    this.onProgress = onProgress;
    this.onEnd = onEnd;
    this.timer = null;
    this.running = false;
  }

  PacedSender.prototype.start = function (bytes, chunkBytes, delayMs) {
    var self = this;
    var ends = chunkEnds(bytes, chunkBytes);
    var index = 0;
    var sent = 0;
    var delay = Math.max(0, delayMs);
    this.running = true;
    function finish(reason) {
      self.running = false;
      self.timer = null;
      self.onEnd(reason);
    }
    function step() {
      self.timer = null;
      if (!self.running) {
        return;
      }
      if (index >= ends.length) {
        finish('done');
        return;
      }
      if (self.canSend()) {
        if (!self.send(bytes.subarray(sent, ends[index]))) {
          finish('disconnected');
          return;
        }
        sent = ends[index];
        index += 1;
        self.onProgress(sent, bytes.length);
      }
      self.timer = setTimeout(step, index >= ends.length ? 0 : delay);
    }
    this.onProgress(0, bytes.length);
    step();
  };

  PacedSender.prototype.stop = function () {
    if (!this.running) {
      return;
    }
    clearTimeout(this.timer);
    this.running = false;
    this.timer = null;
    this.onEnd('stopped');
  };

  var api = {
    DEFAULT_CHUNK_BYTES: DEFAULT_CHUNK_BYTES,
    DEFAULT_DELAY_MS: DEFAULT_DELAY_MS,
    MAX_BUFFERED_BYTES: MAX_BUFFERED_BYTES,
    typedBytes: typedBytes,
    storedBytes: storedBytes,
    chunkEnds: chunkEnds,
    PacedSender: PacedSender
  };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.SerialproxyPacedSend = api;
  }
}(this));
