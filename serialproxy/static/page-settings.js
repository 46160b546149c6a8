// The console page's settings: what they may be, where they come from.
//
// Kept per browser in localStorage and never sent to the server. A
// dashboard that frames the page may set font_size and theme in the URL's
// query to match itself; the query wins for that page, and is not saved.
// Values that make no sense are ignored, whatever their source.
//
// Loaded by the page (window.SerialproxyPageSettings) and by the unit
// tests under Node (module.exports).
(function (root) {
  'use strict';

  var STORAGE_KEY = 'serialproxy-console-settings';
  var DEFAULTS = {
    fontSize: 15,
    theme: 'dark',
    cursorStyle: 'block',
    scrollback: 5000,
    copyOnSelect: true,
    screenReader: false
  };
  var CHOICES = {
    theme: ['dark', 'light', 'high-contrast'],
    cursorStyle: ['block', 'underline', 'bar']
  };
  var RANGES = {fontSize: [8, 40], scrollback: [0, 100000]};
  // The query's names for the settings it may set.
  var QUERY_NAMES = {font_size: 'fontSize', theme: 'theme'};

  // xterm.js colours of each theme; the page's own colours follow
  // body[data-theme] in console.css.
  var TERMINAL_THEMES = {
    dark: {
      background: '#101214', foreground: '#e6e6e6', cursor: '#f2f2f2',
      cursorAccent: '#101214', selectionBackground: '#3b6ea8',
      selectionForeground: '#ffffff'
    },
    light: {
      background: '#fbfbfa', foreground: '#1d2023', cursor: '#1d2023',
      cursorAccent: '#fbfbfa', selectionBackground: '#a9c8ee',
      selectionForeground: '#000000',
      // The usual ANSI colours are made for dark backgrounds: darker ones
      // keep coloured output readable on white.
      black: '#1d2023', red: '#b3261e', green: '#1b6e20', yellow: '#7a5c00',
      blue: '#1f5fbf', magenta: '#8a2f9e', cyan: '#0b6b73', white: '#5f666d',
      brightBlack: '#4e555c', brightRed: '#c4342b', brightGreen: '#237a28',
      brightYellow: '#8a6a00', brightBlue: '#2a6fd6', brightMagenta: '#9c3ab0',
      brightCyan: '#0e7a83', brightWhite: '#3c4146'
    },
    'high-contrast': {
      background: '#000000', foreground: '#ffffff', cursor: '#ffff00',
      cursorAccent: '#000000', selectionBackground: '#ffff00',
      selectionForeground: '#000000'
    }
  };

  // The value as the setting takes it, or undefined when it is not one.
  function valid(name, value) {
    if (!(name in DEFAULTS)) {
      return undefined;
    }
    if (CHOICES[name]) {
      return CHOICES[name].indexOf(value) >= 0 ? value : undefined;
    }
    if (RANGES[name]) {
      var number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ?
          Number(value) : value;
      if (typeof number !== 'number' || !isFinite(number) ||
          Math.floor(number) !== number || number < RANGES[name][0] ||
          number > RANGES[name][1]) {
        return undefined;
      }
      return number;
    }
    return typeof value === 'boolean' ? value : undefined;
  }

  // The settings of the stored ones (an object) over the defaults.
  function stored(savedJSON) {
    var saved = {};
    try {
      saved = JSON.parse(savedJSON || '{}') || {};
    } catch (e) {
      saved = {};
    }
    var kept = {};
    Object.keys(DEFAULTS).forEach(function (name) {
      var value = valid(name, saved[name]);
      if (value !== undefined) {
        kept[name] = value;
      }
    });
    return kept;
  }

  // What the URL's query sets (URLSearchParams), valid values only.
  function fromQuery(params) {
    var set = {};
    Object.keys(QUERY_NAMES).forEach(function (key) {
      if (params.has(key)) {
        var value = valid(QUERY_NAMES[key], params.get(key));
        if (value !== undefined) {
          set[QUERY_NAMES[key]] = value;
        }
      }
    });
    return set;
  }

  // Defaults, then what is stored, then what the query sets.
  function effective(savedJSON, params) {
    var settings = {};
    var layers = [DEFAULTS, stored(savedJSON), fromQuery(params)];
    layers.forEach(function (layer) {
      Object.keys(layer).forEach(function (name) {
        settings[name] = layer[name];
      });
    });
    return settings;
  }

  // The stored settings (JSON) with one changed.
  function withChange(savedJSON, name, value) {
    var kept = stored(savedJSON);
    kept[name] = value;
    return JSON.stringify(kept);
  }

  var api = {
    STORAGE_KEY: STORAGE_KEY,
    DEFAULTS: DEFAULTS,
    QUERY_NAMES: QUERY_NAMES,
    TERMINAL_THEMES: TERMINAL_THEMES,
    valid: valid,
    effective: effective,
    withChange: withChange
  };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.SerialproxyPageSettings = api;
  }
}(this));
