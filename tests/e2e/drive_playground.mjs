// Drives the Microsoft 365 Agents Playground web UI like a Teams user, so end-to-end tests exercise the
// real Teams-flavoured client (Adaptive Card renderer, Action.Execute invokes, card replacement) offline.
//
//   node tests/e2e/drive_playground.mjs <playground-url> <script.json> <screenshot-dir>
//
// script.json is a JSON list of steps, run in order:
//   {"send": "my reviews"}                      type a message and send it; waits until the bot answered the turn
//   {"waitText": "Kept by", "timeoutMs": 15000} wait until a chat message contains the text (log panel excluded)
//   {"fill": {"Justification": "on call"}}       fill inputs of the latest card, found by label or placeholder
//   {"click": "Keep", "nth": 0}                  click the button with that title in the latest card ("nth":
//                                                which of several same-titled buttons, default 0, negative
//                                                from the end); waits until the bot answered the invoke it caused
//   {"waitCharts": 1, "without": ["Progress:"]}  wait until the latest card draws at least 1 SVG chart (of a real
//                                                size), then fail if it shows any "without" text: a chart's
//                                                fallback, which a host that draws the chart never shows (bar
//                                                charts are drawn in HTML, not SVG, so this is how to see them)
//   {"fits": "Ledger checkpoint"}                wait for the newest chat message containing the text, then fail if
//                                                it does not fit: a box of it reaching past the chat pane that clips
//                                                it, or with scrollWidth > clientWidth (text that runs out of it)
//   {"screenshot": "after-keep"}                 save <screenshot-dir>/after-keep.png
// Every step accepts "timeoutMs" (default 15000). "fill" and "click" accept "card": which top-level card on the
// page (default -1, the latest; negative counts from the end). "click" accepts "awaitBot": false for buttons
// that send nothing to the bot (Action.ShowCard, Action.OpenUrl).
//
// Prints one JSON line per step ({"step", "op", "ok", "ms", "bot": [activities the step caused, with the bot's
// HTTP status]}); step 0 is opening the page (which installs the bot), the script's steps follow. Stops at
// the first failed step with exit status 1, a failure.png screenshot and the page's visible text in "error".
// Waits on the Playground's own log stream (a WebSocket that reports each activity it posted to the bot and
// the bot's HTTP status), not on sleeps: a bot that answers 500 fails the step at once instead of timing out.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
const DEFAULT_TIMEOUT_MS = 15000;
const PLAYGROUND = 'Microsoft 365 Agents Playground';
const BOT = 'User Application';
// The Adaptive Cards renderer marks every card root with this class; nested ones belong to Action.ShowCard.
const TOP_LEVEL_CARD = '.ac-adaptiveCard:not(.ac-adaptiveCard .ac-adaptiveCard)';
const MESSAGE_INPUT = '[role="textbox"][contenteditable="true"]';
// Each chat message (the user's and the bot's) has a header with this label; its parent holds the message.
const MESSAGE_HEADER = '[aria-label="Message header"]';

class StepError extends Error {}

/**
 * What the Playground tells its page over two WebSockets: each activity it posted to the bot with the bot's
 * HTTP status (log stream), and each message the bot created in the page's conversation (conversation stream).
 */
class BotLog {
  constructor() {
    this.entries = [];
    this.conversationId = null;
    this.created = 0;
    this.waiters = new Set();
  }

  watch(page) {
    page.on('websocket', (ws) => {
      if (ws.url().includes('/_ws/log/stream')) {
        ws.on('framereceived', (frame) => this.#receiveLog(frame.payload));
      } else if (ws.url().includes('/conversations/stream')) {
        ws.on('framereceived', (frame) => this.#receiveConversation(frame.payload));
      }
    });
  }

  #receiveLog(payload) {
    const log = parseFrame(payload)?.log;
    if (!log || log.from !== PLAYGROUND || log.to !== BOT) return;
    this.conversationId ??= log.conversationId;
    this.entries.push({
      activity: log.activityName,
      status: log.response?.statusCode ?? null,
      text: log.displayText || undefined,
      error: log.response?.statusCode >= 400 ? responseText(log.response.body) : undefined,
    });
    for (const wake of this.waiters) wake();
  }

  #receiveConversation(payload) {
    const frame = parseFrame(payload);
    if (frame?.action === 'createMessage' && frame.actionConversationId === this.conversationId) this.created += 1;
  }

  /** Resolves with the entries logged after index `since` once `done(entries)` holds; rejects after timeoutMs. */
  async waitFor(since, done, timeoutMs, what) {
    const fresh = () => this.entries.slice(since);
    if (done(fresh())) return fresh();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!done(fresh())) return;
        cleanup();
        resolve(fresh());
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new StepError(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
    });
  }
}

function parseFrame(payload) {
  try {
    return JSON.parse(String(payload));
  } catch {
    return null;
  }
}

function responseText(body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return (text ?? '').slice(0, 500);
}

function failIfBotRefused(entries) {
  const refused = entries.filter((e) => e.status === null || e.status >= 400);
  if (refused.length) {
    const list = refused.map((e) => `${e.activity} -> HTTP ${e.status}: ${e.error ?? ''}`).join('; ');
    throw new StepError(`the bot refused ${list}`);
  }
}

async function cardLocator(page, step, timeoutMs) {
  const index = step.card ?? -1;
  const needed = index < 0 ? -index : index + 1;
  try {
    await page.waitForFunction(
      ([selector, n]) => document.querySelectorAll(selector).length >= n,
      [TOP_LEVEL_CARD, needed],
      { timeout: timeoutMs, polling: 100 },
    );
  } catch {
    const count = await page.locator(TOP_LEVEL_CARD).count();
    throw new StepError(`there is no card ${index} after ${timeoutMs} ms (the chat shows ${count} card(s))`);
  }
  const count = await page.locator(TOP_LEVEL_CARD).count();
  return page.locator(TOP_LEVEL_CARD).nth(index < 0 ? count + index : index);
}

async function messageCount(page) {
  return page.locator(MESSAGE_HEADER).count();
}

/** Waits until the chat shows at least `expected` messages, so "the latest card" means the bot's newest one. */
async function waitForMessages(page, expected, timeoutMs) {
  try {
    await page.waitForFunction(
      ([selector, n]) => document.querySelectorAll(selector).length >= n,
      [MESSAGE_HEADER, expected],
      { timeout: timeoutMs, polling: 100 },
    );
  } catch {
    throw new StepError(`the chat shows ${await messageCount(page)} message(s), not the ${expected} expected`);
  }
}

async function messageTexts(page) {
  return page.evaluate(
    (selector) => [...document.querySelectorAll(selector)].map((header) => header.parentElement.innerText.replace(/\s+/g, ' ').trim()),
    MESSAGE_HEADER,
  );
}

const OPERATIONS = {
  async send(page, log, step, timeoutMs) {
    const since = log.entries.length;
    const shown = await messageCount(page);
    const created = log.created;
    const input = page.locator(MESSAGE_INPUT);
    await input.fill(step.send, { timeout: timeoutMs });
    await page.getByRole('button', { name: 'Send Message', exact: true }).click({ timeout: timeoutMs });
    const entries = await log.waitFor(
      since,
      (fresh) => fresh.some((e) => e.activity === 'message'),
      timeoutMs,
      `the bot to answer the message ${JSON.stringify(step.send)}`,
    );
    failIfBotRefused(entries);
    await waitForMessages(page, shown + 1 + (log.created - created), timeoutMs);
    return { bot: entries };
  },

  async waitText(page, log, step, timeoutMs) {
    const wanted = step.waitText.replace(/\s+/g, ' ').trim();
    try {
      await page.waitForFunction(
        ([selector, text]) =>
          [...document.querySelectorAll(selector)].some((header) =>
            header.parentElement.innerText.replace(/\s+/g, ' ').includes(text),
          ),
        [MESSAGE_HEADER, wanted],
        { timeout: timeoutMs, polling: 100 },
      );
    } catch {
      const shown = (await messageTexts(page)).slice(-5);
      throw new StepError(
        `no chat message contains ${JSON.stringify(wanted)} after ${timeoutMs} ms; last messages: ${JSON.stringify(shown)}`,
      );
    }
    return {};
  },

  async fill(page, log, step, timeoutMs) {
    const card = await cardLocator(page, step, timeoutMs);
    for (const [name, value] of Object.entries(step.fill)) {
      const field = card.getByLabel(name, { exact: true }).or(card.getByPlaceholder(name, { exact: true }));
      if ((await field.count()) === 0) {
        throw new StepError(`the card has no input labelled or with placeholder ${JSON.stringify(name)}`);
      }
      await field.first().fill(String(value), { timeout: timeoutMs });
    }
    return {};
  },

  async click(page, log, step, timeoutMs) {
    const card = await cardLocator(page, step, timeoutMs);
    const buttons = card.getByRole('button', { name: step.click, exact: true });
    const count = await buttons.count();
    const nth = step.nth ?? 0;
    if (nth >= count || -nth > count) {
      const titles = await card.getByRole('button').allInnerTexts();
      throw new StepError(
        `the card has ${count} button(s) titled ${JSON.stringify(step.click)}, not #${nth}; its buttons: ${JSON.stringify(titles)}`,
      );
    }
    const since = log.entries.length;
    const shown = await messageCount(page);
    const created = log.created;
    await buttons.nth(nth < 0 ? count + nth : nth).click({ timeout: timeoutMs });
    if (step.awaitBot === false) return {};
    const entries = await log.waitFor(
      since,
      (fresh) => fresh.some((e) => e.activity === 'invoke' || e.activity === 'message'),
      timeoutMs,
      `the bot to answer the click on ${JSON.stringify(step.click)}`,
    );
    failIfBotRefused(entries);
    await waitForMessages(page, shown + (log.created - created), timeoutMs);
    return { bot: entries };
  },

  async waitCharts(page, log, step, timeoutMs) {
    const card = await cardLocator(page, step, timeoutMs);
    const handle = await card.elementHandle();
    const charts = ([root, n]) =>
      [...root.querySelectorAll('svg')].filter((svg) => {
        const box = svg.getBoundingClientRect();
        return box.width >= 80 && box.height >= 40;
      }).length >= n;
    try {
      await page.waitForFunction(charts, [handle, step.waitCharts], { timeout: timeoutMs, polling: 100 });
    } catch {
      const drawn = await handle.evaluate((root) => root.querySelectorAll('svg').length);
      throw new StepError(`the latest card draws ${drawn} SVG element(s), not ${step.waitCharts} chart(s)`);
    }
    const text = (await handle.innerText()).replace(/\s+/g, ' ');
    const shown = [step.without ?? []].flat().filter((fallback) => text.includes(fallback));
    if (shown.length) {
      throw new StepError(`the card shows ${JSON.stringify(shown)}: a chart fell back to its text instead of being drawn`);
    }
    return {};
  },

  async fits(page, log, step, timeoutMs) {
    await OPERATIONS.waitText(page, log, { waitText: step.fits }, timeoutMs);
    const wanted = step.fits.replace(/\s+/g, ' ').trim();
    const overflowing = await page.evaluate(
      ([selector, text]) => {
        const message = [...document.querySelectorAll(selector)]
          .map((header) => header.parentElement)
          .filter((element) => element.innerText.replace(/\s+/g, ' ').includes(text))
          .pop();
        // A bubble grows with what it holds, so its own widths agree; what overflows runs past the chat pane
        // that clips it (the nearest ancestor that does not let content show outside it).
        let pane = message.parentElement;
        while (pane.parentElement && getComputedStyle(pane).overflowX === 'visible') pane = pane.parentElement;
        const edge = pane.getBoundingClientRect().right;
        const describe = (element, why) => `${element.tagName.toLowerCase()}.${String(element.className).slice(0, 40)} ${why}`;
        const boxes = [message, ...message.querySelectorAll('*')];
        return [
          ...boxes
            .filter((element) => element.getClientRects().length && element.getBoundingClientRect().right > edge + 1)
            .map((element) => describe(element, `ends at ${element.getBoundingClientRect().right}px, the pane at ${edge}px`)),
          ...boxes
            .filter((element) => element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 1)
            .map((element) => describe(element, `holds ${element.scrollWidth}px in ${element.clientWidth}px`)),
        ];
      },
      [MESSAGE_HEADER, wanted],
    );
    if (overflowing.length) {
      throw new StepError(`the message with ${JSON.stringify(wanted)} overflows its bubble: ${overflowing.slice(0, 5).join('; ')}`);
    }
    return {};
  },

  async screenshot(page, log, step, timeoutMs, shotsDir) {
    const file = path.join(shotsDir, `${step.screenshot}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: timeoutMs });
    return { file };
  },
};

/** Names each step's operation, or says which step is malformed, before any browser starts. */
function operationsOf(steps) {
  if (!Array.isArray(steps)) throw new StepError('the script must hold a JSON list of steps');
  return steps.map((step, index) => {
    const names = step && typeof step === 'object' ? Object.keys(step).filter((key) => key in OPERATIONS) : [];
    if (names.length !== 1) {
      throw new StepError(
        `step ${index + 1} needs exactly one of ${Object.keys(OPERATIONS).join(', ')}: ${JSON.stringify(step)}`,
      );
    }
    return names[0];
  });
}

async function open(page, log, url) {
  await page.goto(url, { waitUntil: 'load', timeout: DEFAULT_TIMEOUT_MS });
  // Loading the page is what makes the Playground install the bot: it posts installationUpdate and then
  // conversationUpdate, and only after those does the conversation accept messages.
  const entries = await log.waitFor(
    0,
    (fresh) => fresh.some((e) => e.activity === 'conversationUpdate'),
    DEFAULT_TIMEOUT_MS,
    'the Playground to start the conversation with the bot (is the bot listening?)',
  );
  failIfBotRefused(entries);
  await page.locator(MESSAGE_INPUT).waitFor({ state: 'visible', timeout: DEFAULT_TIMEOUT_MS });
  return { bot: entries };
}

async function visibleText(page) {
  try {
    return (await page.evaluate(() => document.body.innerText)).replace(/\n{2,}/g, '\n').slice(-6000);
  } catch (error) {
    return `(page text unavailable: ${error.message})`;
  }
}

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function main(argv) {
  if (argv.length !== 3) {
    process.stderr.write('usage: node drive_playground.mjs <playground-url> <script.json> <screenshot-dir>\n');
    return 2;
  }
  const [url, scriptPath, shotsDir] = argv;
  const steps = JSON.parse(fs.readFileSync(scriptPath, 'utf8'));
  let operations;
  try {
    operations = operationsOf(steps);
  } catch (error) {
    emit({ step: null, op: 'script', ok: false, error: error.message });
    return 2;
  }
  fs.mkdirSync(shotsDir, { recursive: true });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const log = new BotLog();
    log.watch(page);
    // Step 0 is opening the page; the script's steps are numbered from 1.
    const plan = [['open', () => open(page, log, url)]];
    steps.forEach((step, index) => {
      const op = operations[index];
      plan.push([op, () => OPERATIONS[op](page, log, step, step.timeoutMs ?? DEFAULT_TIMEOUT_MS, shotsDir)]);
    });
    for (const [index, [op, run]] of plan.entries()) {
      const started = Date.now();
      try {
        const result = await run();
        emit({ step: index, op, ok: true, ms: Date.now() - started, ...result });
      } catch (error) {
        const failure = path.join(shotsDir, 'failure.png');
        await page.screenshot({ path: failure, fullPage: true }).catch(() => {});
        const reason = error instanceof StepError ? error.message : `${error.name}: ${error.message}`;
        emit({
          step: index,
          op,
          ok: false,
          ms: Date.now() - started,
          error: `${reason}\n--- visible page text ---\n${await visibleText(page)}`,
          screenshot: failure,
          bot: log.entries,
        });
        return 1;
      }
    }
    return 0;
  } finally {
    await browser.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
