// Parses and renders Adaptive Cards with Microsoft's official renderer (adaptivecards 3.0.6) in headless
// Chromium, the way a Teams client would, and photographs them all on one page.
//
//   node tests/e2e/render_cards.mjs <cards.json> <screenshot.png>
//
// cards.json is a JSON list of {"name": "...", "card": {...Adaptive Card...}}. Each card is parsed against
// Adaptive Cards 1.5 (the newest version Teams renders), so a property from a later version is reported
// rather than silently accepted. Prints one JSON object:
//   {"cards": [{"name", "parseEvents": [...], "validationEvents": [...], "rendered", "height",
//               "actions": ["Action.Execute", ...], "refresh": "Action.Execute" | null, "text",
//               "contrast": {"ratio", "text"} (the least readable text: WCAG contrast against its background)}],
//    "screenshot": "<path>"}
// where each event is {"phase", "event", "message"} with the renderer's own enum names. Exits 1 when any card
// logged an event or did not render, 2 when it could not run at all.
//
// The page is about:blank with the renderer injected from node_modules: nothing is fetched from the network.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const RENDERER = path.join(path.dirname(require.resolve('adaptivecards/package.json')), 'dist', 'adaptivecards.min.js');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><style>
  body { margin: 16px; background: #f5f5f5; font-family: "Segoe UI", system-ui, sans-serif; }
  #cards { columns: 3 440px; column-gap: 16px; }
  figure { break-inside: avoid; margin: 0 0 16px; background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; }
  figcaption { font: 600 12px monospace; color: #616161; padding: 6px 10px; border-bottom: 1px solid #eee; }
</style></head><body><div id="cards"></div></body></html>`;

function fail(message) {
  process.stdout.write(JSON.stringify({ cards: [], screenshot: null, error: message }) + '\n');
  process.exit(2);
}

const [cardsFile, screenshot] = process.argv.slice(2);
if (!cardsFile || !screenshot) fail('usage: node tests/e2e/render_cards.mjs <cards.json> <screenshot.png>');
const cards = JSON.parse(fs.readFileSync(cardsFile, 'utf8'));

let browser;
try {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', args: CHROMIUM_ARGS });
} catch (error) {
  fail(`cannot start Chromium: ${error.message}`);
}

try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.setContent(PAGE);
  await page.addScriptTag({ path: RENDERER });
  const results = await page.evaluate((cards) => {
    const AC = window.AdaptiveCards;
    const describe = (e) => ({
      phase: AC.ValidationPhase[e.phase],
      event: AC.ValidationEvent[e.event],
      message: e.message,
    });
    // Teams renders a subset of Markdown in TextBlocks (bold, italic, links); the renderer leaves Markdown to
    // the host, so do what Teams does for the subset our cards use, nothing more.
    AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
      const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      result.outputHtml = escaped
        .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
        .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2">$1</a>');
      result.didProcess = true;
    };
    // WCAG contrast of every piece of text against what is actually behind it (translucent colours blended),
    // so a colour that is hard to read on white is reported with the text that wears it.
    const rgba = (css) => {
      const parts = (css.match(/rgba?\(([^)]+)\)/) || [null, '0,0,0,0'])[1].split(',').map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3]));
    const luminance = (rgb) => {
      const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const behind = (element) => {
      const layers = [];
      for (let node = element; node; node = node.parentElement) {
        const colour = rgba(getComputedStyle(node).backgroundColor);
        if (colour[3] > 0) layers.push(colour);
        if (colour[3] >= 1) break;
      }
      return layers.reverse().reduce((bottom, top) => over(top, bottom), [255, 255, 255]);
    };
    const contrastOf = (element) => {
      const background = behind(element);
      const foreground = over(rgba(getComputedStyle(element).color), background);
      const [high, low] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
      return (high + 0.05) / (low + 0.05);
    };
    const worstContrast = (root) => {
      let worst = { ratio: 21, text: '' };
      for (const element of root.querySelectorAll('*')) {
        const own = [...element.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
        if (!own || element.offsetHeight === 0) continue;
        const ratio = contrastOf(element);
        if (ratio < worst.ratio) worst = { ratio: Math.round(ratio * 100) / 100, text: own.slice(0, 80) };
      }
      return worst;
    };
    const host = document.getElementById('cards');
    return cards.map(({ name, card: json }) => {
      const card = new AC.AdaptiveCard();
      const context = new AC.SerializationContext(AC.Versions.v1_5);
      card.parse(json, context);
      const parseEvents = [];
      for (let i = 0; i < context.eventCount; i++) parseEvents.push(describe(context.getEventAt(i)));
      const validationEvents = card.validateProperties().validationEvents.map(describe);
      const figure = document.createElement('figure');
      const caption = document.createElement('figcaption');
      caption.textContent = name;
      figure.appendChild(caption);
      const element = card.render();
      if (element) figure.appendChild(element);
      host.appendChild(figure);
      return {
        name,
        parseEvents,
        validationEvents,
        rendered: Boolean(element && element.offsetHeight > 0),
        height: element ? element.offsetHeight : 0,
        actions: card.getAllActions().map((action) => action.getJsonTypeName()),
        refresh: card.refresh && card.refresh.action ? card.refresh.action.getJsonTypeName() : null,
        text: element ? element.innerText : '',
        contrast: element ? worstContrast(element) : null,
      };
    });
  }, cards);
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  process.stdout.write(JSON.stringify({ cards: results, screenshot }) + '\n');
  const bad = results.some((r) => r.parseEvents.length || r.validationEvents.length || !r.rendered);
  process.exitCode = bad ? 1 : 0;
} finally {
  await browser.close();
}
