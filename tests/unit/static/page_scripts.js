// Checks of the console page's scripts under Node, one per name given on
// the command line; run by test_page_scripts.py. Prints what failed and
// exits 1, or exits 0. SERIALPROXY_JS_SEED varies the random cases.
'use strict';

const assert = require('assert');
const path = require('path');

const STATIC = path.join(__dirname, '..', '..', '..', 'serialproxy', 'static');
const OutputDecoder = require(path.join(STATIC, 'output-decoder.js'));
const Paced = require(path.join(STATIC, 'paced-send.js'));
const Settings = require(path.join(STATIC, 'page-settings.js'));
const Resume = require(path.join(STATIC, 'stream-resume.js'));

const REPLACEMENT = '\ufffd';
const RANDOM_CASES = Number(process.env.SERIALPROXY_JS_CASES || 3000);

// A small seeded generator (mulberry32): a failure can be replayed.
function random(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.SERIALPROXY_JS_SEED || Date.now() % 1e9);

// Characters of every UTF-8 width, and the edges of each width's range.
const WIDTHS = {
  1: ['\u0000', 'a', '\u007f', '\n'],
  2: ['\u0080', '\u00e9', '\u03a9', '\u07ff'],
  3: ['\u0800', '\u20ac', '\u4e2d', '\ud7ff', '\ue000', '\ufffc', '\uffff'],
  4: ['\u{10000}', '\u{1f600}', '\u{1d11e}', '\u{10ffff}']
};
const ALL = [].concat(WIDTHS[1], WIDTHS[2], WIDTHS[3], WIDTHS[4]);

function randomText(rand, length) {
  let text = '';
  for (let i = 0; i < length; i++) {
    text += ALL[Math.floor(rand() * ALL.length)];
  }
  return text;
}

// The decoder's text of bytes delivered cut at these offsets.
function decodeSplit(bytes, cuts) {
  const decoder = new OutputDecoder();
  let text = '';
  let start = 0;
  for (const cut of cuts.concat([bytes.length])) {
    text += decoder.decode(bytes.subarray(start, cut));
    start = cut;
  }
  return text + decoder.end();
}

function replacements(text) {
  return text.split(REPLACEMENT).length - 1;
}

function assertDecodes(original, bytes, cuts) {
  const text = decodeSplit(bytes, cuts);
  assert.strictEqual(replacements(text), 0,
                     'U+FFFD with cuts ' + JSON.stringify(cuts));
  assert.strictEqual(text, original, 'cuts ' + JSON.stringify(cuts));
}

const CHECKS = {
  // Every character of every width, cut at one and at two boundaries
  // anywhere, and one byte per frame.
  decoder_every_boundary() {
    const original = 'x' + ALL.join('') + 'y';
    const bytes = new TextEncoder().encode(original);
    for (let i = 0; i <= bytes.length; i++) {
      assertDecodes(original, bytes, [i]);
      for (let j = i; j <= bytes.length; j++) {
        assertDecodes(original, bytes, [i, j]);
      }
    }
    assertDecodes(original, bytes,
                  Array.from({length: bytes.length}, (_, i) => i));
  },

  // Random texts cut into random frames; the seed is printed on failure.
  decoder_random_frames() {
    const rand = random(SEED);
    for (let n = 0; n < RANDOM_CASES; n++) {
      const original = randomText(rand, 1 + Math.floor(rand() * 40));
      const bytes = new TextEncoder().encode(original);
      const cuts = [];
      for (let i = 1; i < bytes.length; i++) {
        if (rand() < 0.3) {
          cuts.push(i);
        }
      }
      assertDecodes(original, bytes, cuts);
    }
  },

  // A replayed history that ends inside a character, then live output:
  // one session's stream, one decoder.
  decoder_history_then_live() {
    const history = new TextEncoder().encode('booted \u00e9t\u00e9 \u{1f600}');
    const live = new TextEncoder().encode(' \u4e2d\u6587\r\n');
    const whole = new Uint8Array(history.length + live.length);
    whole.set(history);
    whole.set(live, history.length);
    for (let cut = 0; cut <= whole.length; cut++) {
      assertDecodes('booted \u00e9t\u00e9 \u{1f600} \u4e2d\u6587\r\n', whole,
                    [cut]);
    }
  },

  // Bytes that are no UTF-8 still show, as U+FFFD, wherever they are cut.
  decoder_invalid_bytes_show_as_replacement() {
    const cases = [
      [[0x61, 0xff, 0x62], 'a\ufffdb'],
      [[0x80], '\ufffd'],
      [[0xc0, 0x80], '\ufffd\ufffd'],
      [[0xed, 0xa0, 0x80], '\ufffd\ufffd\ufffd'],
      [[0xe2, 0x82, 0x41], '\ufffdA'],
      [[0x61, 0xf0, 0x9f, 0x98], 'a\ufffd']
    ];
    for (const [list, expected] of cases) {
      const bytes = Uint8Array.from(list);
      for (let i = 0; i <= bytes.length; i++) {
        assert.strictEqual(decodeSplit(bytes, [i]), expected,
                           JSON.stringify(list) + ' cut at ' + i);
      }
    }
  },

  // A new session starts clean: a character left cut by the old one
  // does not eat the new session's first bytes.
  decoder_new_session_starts_clean() {
    const old = new OutputDecoder();
    assert.strictEqual(old.decode(Uint8Array.from([0x61, 0xe2, 0x82])), 'a');
    assert.strictEqual(old.end(), REPLACEMENT);
    assert.strictEqual(new OutputDecoder().decode(Uint8Array.from([0xac])),
                       REPLACEMENT);
    assert.strictEqual(old.decode(new TextEncoder().encode('ok')), 'ok');
  },

  // Send text: chunks at most as long as asked, never a character cut,
  // nothing lost, newlines typed as Enter.
  paced_chunks_keep_characters_whole() {
    const rand = random(SEED);
    for (let n = 0; n < RANDOM_CASES / 10; n++) {
      const text = randomText(rand, Math.floor(rand() * 200));
      const bytes = Paced.typedBytes(text);
      const size = 1 + Math.floor(rand() * 9);
      const ends = Paced.chunkEnds(bytes, size);
      let start = 0;
      let rebuilt = '';
      for (const end of ends) {
        const chunk = bytes.subarray(start, end);
        const text = new TextDecoder('utf-8', {fatal: true}).decode(chunk);
        assert.ok(chunk.length <= size || Array.from(text).length === 1,
                  'chunk of ' + chunk.length + ' > ' + size);
        rebuilt += text;
        start = end;
      }
      assert.strictEqual(start, bytes.length);
      assert.strictEqual(rebuilt, text.replace(/\r\n?|\n/g, '\r'));
    }
    assert.deepStrictEqual(Array.from(Paced.typedBytes('a\nb\r\nc\rd')),
                           Array.from(Buffer.from('a\rb\rc\rd')));
    assert.deepStrictEqual(Array.from(Paced.storedBytes('a\r\nb\rc\n')),
                           Array.from(Buffer.from('a\nb\nc\n')));
  },

  async paced_sender_sends_all_then_stops_when_told() {
    const bytes = Paced.typedBytes('0123456789'.repeat(50));
    // All of it, in order, progress rising, 'done' once.
    let got = [];
    let progress = [];
    let ended = await new Promise(done => {
      new Paced.PacedSender(chunk => { got.push(...chunk); return true; },
                            () => true, (sent) => progress.push(sent),
                            done).start(bytes, 64, 0);
    });
    assert.strictEqual(ended, 'done');
    assert.deepStrictEqual(got, Array.from(bytes));
    assert.deepStrictEqual(progress, progress.slice().sort((a, b) => a - b));
    assert.strictEqual(progress[progress.length - 1], bytes.length);

    // Stop: nothing more is sent after it.
    got = [];
    let sender;
    ended = await new Promise(done => {
      sender = new Paced.PacedSender(chunk => {
        got.push(...chunk);
        if (got.length >= 128) {
          setTimeout(() => sender.stop(), 0);
        }
        return true;
      }, () => true, () => {}, done);
      sender.start(bytes, 64, 5);
    });
    assert.strictEqual(ended, 'stopped');
    const atStop = got.length;
    await new Promise(done => setTimeout(done, 50));
    assert.strictEqual(got.length, atStop);
    assert.ok(atStop < bytes.length);

    // Waits while the connection holds too much; ends when it is gone.
    let open = 3;
    let busy = true;
    setTimeout(() => { busy = false; }, 30);
    ended = await new Promise(done => {
      new Paced.PacedSender(() => open-- > 0, () => !busy, () => {},
                            done).start(bytes, 64, 0);
    });
    assert.strictEqual(ended, 'disconnected');
  },

  // The first session asks for offsets; each later one resumes at the
  // note's offset plus every byte received since, history or live, in
  // frames of any size.
  resume_offset_is_the_note_plus_bytes_received() {
    const rand = random(SEED);
    const position = new Resume.StreamPosition();
    assert.deepStrictEqual(position.query(), ['offsets', '1']);
    position.sessionStarted();
    let meant = position.note({offset: 1000, requested: null,
                               first_available: 0, history: 300});
    assert.deepStrictEqual(meant, {resumed: false, lost: 0,
                                   restarted: false});
    let offset = 1000;
    let history = 0;
    for (let n = 0; n < RANDOM_CASES; n++) {
      const size = 1 + Math.floor(rand() * 50);
      const fromHistory = position.received(size);
      assert.strictEqual(fromHistory, Math.max(0, Math.min(size,
                                                           300 - history)));
      history += fromHistory;
      offset += size;
      assert.strictEqual(position.offset, offset);
    }
    assert.strictEqual(history, 300);
    assert.deepStrictEqual(position.query(), ['resume', String(offset)]);
    // The next session resumes there and continues the screen.
    position.sessionStarted();
    meant = position.note({offset: offset, requested: offset,
                           first_available: 0, history: 0});
    assert.deepStrictEqual(meant, {resumed: true, lost: 0,
                                   restarted: false});
    assert.strictEqual(position.received(10), 0);
    assert.strictEqual(position.offset, offset + 10);
  },

  // What is no longer kept is said; a log begun again is said; a proxy
  // that cannot tell, or sends no note at all, resumes nothing.
  resume_gap_restart_and_proxies_without_offsets() {
    const position = new Resume.StreamPosition();
    position.sessionStarted();
    position.note({offset: 50, requested: null, first_available: 0,
                   history: 0});
    position.received(50);
    position.sessionStarted();
    assert.deepStrictEqual(position.note({offset: 4000, requested: 100,
                                          first_available: 4000,
                                          history: 7}),
                           {resumed: true, lost: 3900, restarted: false});
    assert.strictEqual(position.received(10), 7);
    assert.strictEqual(position.offset, 4010);
    position.sessionStarted();
    assert.deepStrictEqual(position.note({offset: 20, requested: 4010,
                                          first_available: 0,
                                          history: 20}),
                           {resumed: true, lost: 0, restarted: true});
    // Offset null: behave as before, nothing counted.
    position.sessionStarted();
    assert.deepStrictEqual(position.note({offset: null, requested: 40}),
                           {resumed: false, lost: 0, restarted: false});
    assert.strictEqual(position.received(10), 0);
    assert.deepStrictEqual(position.query(), ['offsets', '1']);
    // Nonsense is no offset either.
    for (const bad of [-1, 1.5, '12', NaN, Infinity, undefined]) {
      position.sessionStarted();
      position.note({offset: bad, history: 3});
      assert.strictEqual(position.offset, null, String(bad));
    }
    // An older proxy: console bytes with no note before them.
    position.sessionStarted();
    position.note({offset: 10, requested: null, history: 0});
    position.sessionStarted();
    assert.deepStrictEqual(position.query(), ['resume', '10']);
    assert.strictEqual(position.received(5), 0);
    assert.strictEqual(position.offset, null);
  },

  // While history is written, xterm.js's answers to the queries in it
  // are held back; keys a person types are not answers.
  reconnect_pauses_grow_and_spread_a_herd() {
    const steps = Resume.RECONNECT_STEPS_MS;
    assert.deepStrictEqual([1000, 2000, 4000, 8000, 15000, 30000], steps);
    // The edges of each draw: half the step, the whole step.
    steps.forEach(function (step, retry) {
      assert.strictEqual(step / 2, Resume.reconnectDelayMs(retry, () => 0));
      assert.strictEqual(step,
                         Resume.reconnectDelayMs(retry, () => 1 - 1e-12));
    });
    // Used up: the Reconnect button is left.
    assert.strictEqual(null, Resume.reconnectDelayMs(steps.length));
    assert.strictEqual(null, Resume.reconnectDelayMs(steps.length + 5));
    // A thousand pages a proxy dropped at once, each with its own draws:
    // every pause is in its range, and no 50 ms of that range holds much
    // more than its share (without the jitter all thousand come back in
    // the same ms). The bound is far in the tail of what fair draws
    // give (a 50 ms share of 12.5 pages crowds to 29 in about one run
    // of a hundred), so that a seed never fails it by chance.
    const rand = random(SEED);
    steps.forEach(function (step, retry) {
      const delays = [];
      for (let page = 0; page < 1000; page++) {
        delays.push(Resume.reconnectDelayMs(retry, rand));
      }
      delays.forEach(function (delay) {
        assert.ok(delay >= step / 2 && delay <= step, delay);
      });
      const buckets = {};
      delays.forEach(function (delay) {
        const bucket = Math.floor(delay / 50);
        buckets[bucket] = (buckets[bucket] || 0) + 1;
      });
      const crowd = Math.max.apply(null, Object.values(buckets));
      const share = 1000 * 50 / (step / 2);
      assert.ok(crowd <= 2 * share + 20, 'retry ' + retry + ': ' + crowd +
                ' of 1000 pages in one 50 ms, share ' + share);
    });
    // The page's default draw (Math.random) stays in range too.
    for (let i = 0; i < RANDOM_CASES; i++) {
      const delay = Resume.reconnectDelayMs(0);
      assert.ok(delay >= 500 && delay <= 1000, delay);
    }
  },

  terminal_answers_are_told_from_keys() {
    const answers = ['\x1b[24;80R', '\x1b[?1;2c', '\x1b[>0;276;0c',
                     '\x1b[0n', '\x1b[8;24;80t', '\x1b[?1;2$y',
                     '\x1bP1$r0m\x1b\\', '\x1b]11;rgb:1010/1212/1414\x07',
                     '\x1b]10;rgb:e6e6/e6e6/e6e6\x1b\\',
                     '\x1b[24;80R\x1b[?1;2c'];
    for (const answer of answers) {
      assert.ok(Resume.isTerminalAnswer(answer), JSON.stringify(answer));
    }
    const keys = ['a', 'ls\r', '\r', '\x03', '\x1b', '\x1b[A', '\x1bOA',
                  '\x1b[3~', '\x1b[1;5D', '\x1b[15~', 'R', '\x1b[24;80Rx',
                  '', '\x1b[200~pasted\x1b[201~'];
    for (const key of keys) {
      assert.ok(!Resume.isTerminalAnswer(key), JSON.stringify(key));
    }
  },

  settings_come_from_defaults_storage_and_query() {
    const none = new URLSearchParams('');
    assert.deepStrictEqual(Settings.effective(null, none), Settings.DEFAULTS);
    const saved = JSON.stringify({fontSize: 18, theme: 'light',
                                  scrollback: 'lots', bogus: 1,
                                  copyOnSelect: false});
    let s = Settings.effective(saved, none);
    assert.strictEqual(s.fontSize, 18);
    assert.strictEqual(s.theme, 'light');
    assert.strictEqual(s.scrollback, Settings.DEFAULTS.scrollback);
    assert.strictEqual(s.copyOnSelect, false);
    assert.ok(!('bogus' in s));
    // The query wins; what makes no sense is ignored.
    s = Settings.effective(saved, new URLSearchParams(
        'font_size=22&theme=high-contrast&token=T'));
    assert.strictEqual(s.fontSize, 22);
    assert.strictEqual(s.theme, 'high-contrast');
    s = Settings.effective(saved, new URLSearchParams(
        'font_size=2000&theme=neon'));
    assert.strictEqual(s.fontSize, 18);
    assert.strictEqual(s.theme, 'light');
    assert.deepStrictEqual(Settings.effective('{not json', none),
                           Settings.DEFAULTS);
    // A change keeps the others.
    const changed = JSON.parse(Settings.withChange(saved, 'cursorStyle',
                                                   'bar'));
    assert.deepStrictEqual(changed, {fontSize: 18, theme: 'light',
                                     cursorStyle: 'bar',
                                     copyOnSelect: false});
    assert.strictEqual(Settings.valid('fontSize', '12'), 12);
    assert.strictEqual(Settings.valid('fontSize', '12.5'), undefined);
    assert.strictEqual(Settings.valid('screenReader', 'true'), undefined);
    for (const theme of ['dark', 'light', 'high-contrast']) {
      assert.ok(Settings.TERMINAL_THEMES[theme].background, theme);
    }
  }
};

async function main(names) {
  let failed = 0;
  for (const name of names.length ? names : Object.keys(CHECKS)) {
    if (!CHECKS[name]) {
      console.log('no such check: ' + name);
      failed += 1;
      continue;
    }
    try {
      await CHECKS[name]();
      console.log('ok ' + name);
    } catch (err) {
      failed += 1;
      console.log('FAIL ' + name + ' (SERIALPROXY_JS_SEED=' + SEED + '): ' +
                  (err.stack || err));
    }
  }
  process.exit(failed ? 1 : 0);
}

main(process.argv.slice(2));
