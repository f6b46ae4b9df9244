// The care team's dashboard, end to end, in headless Chromium.
//
// Real parts only: `katctl clinic` bootstraps the database, the
// `katcore-clinic` binary serves on loopback, `katctl device` is the
// client's phone (encrypted store, real sync), and Debian's Chromium,
// driven by playwright-core, is the clinician's browser.
//
// Run it with scripts/dashboard-test.sh, which installs what it needs and
// builds the binaries. Environment:
//   KATCORE_BIN_DIR      where katctl and katcore-clinic are (required)
//   KATCORE_SCREENSHOTS  where the page screenshots go (default: a temp dir;
//                        scripts/dashboard-test.sh --screenshots writes docs/dashboard)
//   CHROMIUM             the browser (default /usr/bin/chromium)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

const bin = process.env.KATCORE_BIN_DIR;
assert.ok(bin, 'KATCORE_BIN_DIR names the directory of katctl and katcore-clinic');
const work = mkdtempSync(join(tmpdir(), 'katcore-dashboard-'));
const shots = process.env.KATCORE_SCREENSHOTS || join(work, 'screenshots');
mkdirSync(shots, { recursive: true });
const db = join(work, 'clinic.db');
const recordKey = join(work, 'clinic.record-key');
const password = 'a nurse-length passphrase';
const otherPassword = 'another clinic entirely';
const zone = 'America/New_York';
// axe-core (npm, pinned), evaluated in each page to audit it.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let server;
let url;
let browser;

/** Runs katctl with `args`; returns its JSON output. */
function katctl(args, input) {
  const out = execFileSync(join(bin, 'katctl'), args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  return out.trim() ? JSON.parse(out) : null;
}

/** The client's phone: `katctl device` on its own encrypted store. */
function phone(...args) {
  return katctl(['device', '--data-dir', join(work, 'phone'), ...args]);
}

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts katcore-clinic and waits (bounded) until it answers /healthz. */
async function startServer() {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(join(bin, 'katcore-clinic'), ['--db', db, '--record-key', recordKey, '--listen', `127.0.0.1:${port}`,
    '--time-zone', zone], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('katcore-clinic did not start within 10 s');
}

before(async () => {
  // One clinic's clinician gets a login at init, the other's afterwards.
  const clinic = katctl(['clinic', 'init', '--db', db, '--name', 'Riverside KAT Clinic', '--clinician', 'Dr. Rivera',
    '--signing-key-out', join(work, 'riverside.pem'), '--record-key-out', recordKey, '--login', 'Rivera'],
    `${password}\n`);
  assert.equal(clinic.login, 'rivera');
  const other = katctl(['clinic', 'init', '--db', db, '--name', 'Lakeside Clinic', '--clinician', 'Dr. Lake',
    '--signing-key-out', join(work, 'lakeside.pem')]);
  katctl(['clinic', 'password', '--db', db, '--clinician', other.clinician_id, '--login', 'lake'], `${otherPassword}\n`);
  await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // launch() gives every run a fresh temporary profile (its own --user-data-dir).
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});

/** A fresh browser context (its own cookies) with a page, 15 s per step at most. */
async function newPage(width = 1366) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, timezoneId: zone });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

/**
 * axe-core's serious and critical violations on the page as it is now
 * (WCAG 2.x A and AA, and axe's best practices), as readable lines.
 */
async function axeViolations(page) {
  // Evaluated through the DevTools protocol: the page's CSP does not apply.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } }));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.length}× e.g. ${v.nodes[0].target.join(' ')} — ${v.nodes[0].failureSummary}`);
}

async function signIn(page, login, secret) {
  await page.goto(`${url}/dashboard`);
  assert.match(page.url(), /\/dashboard\/signin$/, 'a signed-out visit lands on the sign-in page');
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * A session at `startMs` that the phone starts through the gate: refused
 * first (the checklist is incomplete), then answered, started and ended.
 * Its two readiness decisions are the client page's audit trail.
 */
function pastSession(startMs) {
  const at = (ms) => new Date(ms).toISOString();
  const session = phone('schedule', '--start', at(startMs), '--tz', zone);
  assert.throws(() => phone('start', '--session', session.id, '--at', at(startMs - 3_600_000)), /not ready/);
  const hoursBefore = (h) => at(startMs - h * 3_600_000);
  const answers = {
    last_solid_food: hoursBefore(5), last_liquid: hoursBefore(2), last_benzodiazepine: 'none',
    last_stimulant: 'none', last_alcohol: hoursBefore(72), blood_pressure: { systolic: 128, diastolic: 82 },
    monitor_present: true, safe_setting: true, no_driving_plan: true, antihypertensive_taken: 'not_prescribed',
    intention_set: 'Stay with whatever comes up.',
  };
  // The contraindication screening: every other item is a "no".
  for (const item of phone('evaluate', '--session', session.id).items) {
    if (!(item.id in answers)) answers[item.id] = false;
  }
  katctl(['device', '--data-dir', join(work, 'phone'), 'answer', '--session', session.id, '--answers', '-',
    '--at', hoursBefore(1)], JSON.stringify(answers));
  assert.equal(phone('start', '--session', session.id, '--at', at(startMs)).status, 'ready');
  phone('end', '--session', session.id, '--at', at(startMs + 3 * 3_600_000));
}

/** YYYY-MM-DD of the day after tomorrow in the client's zone. */
function inTwoDays() {
  const day = new Date(Date.now() + 2 * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(day);
}

test('a clinician signs in, sees the urgent reading first, acknowledges it, plots it and schedules a session the phone receives', async () => {
  const page = await newPage();

  // A wrong password is refused, and says so without saying which half was wrong.
  await signIn(page, 'rivera', 'not the password at all');
  await page.getByText('That login and password do not match.').waitFor();
  assert.match(page.url(), /\/dashboard\/signin$/);

  await signIn(page, 'rivera', password);
  await page.getByRole('heading', { name: 'Open alerts' }).waitFor();
  await page.getByText('No open alerts').waitFor();

  // Add the client and an enrollment code for their phone.
  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByLabel('Label (a pseudonym, no health data)').fill('client-0427');
  await page.getByRole('button', { name: 'Add client' }).click();
  await page.getByRole('heading', { name: 'client-0427' }).waitFor();
  const clientUrl = page.url().split('?')[0];
  await page.getByRole('button', { name: 'Create an enrollment code' }).click();
  const code = (await page.locator('#enrollment-code').textContent()).trim();
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.ok(await page.getByRole('img', { name: 'Enrollment QR code' }).isVisible(), 'the QR code is shown');
  assert.ok(!page.url().includes(code), 'the code is never in a URL');
  await page.screenshot({ path: join(shots, 'enrollment.png') });

  // The phone enrolls, records readings over the past days and an urgent
  // one now, a PHQ-9 and a side effect, and syncs.
  phone('init');
  phone('enroll', '--server', url, '--code', code, '--label', 'phone');
  const now = Date.now();
  const daysAgo = (d) => new Date(now - d * 86_400_000).toISOString();
  for (const [d, s, di] of [[12, 132, 84], [9, 138, 88], [6, 129, 82], [3, 144, 92]]) {
    phone('vitals', '--systolic', String(s), '--diastolic', String(di), '--at', daysAgo(d));
  }
  phone('check-in', '--instrument', 'phq9', '--answers', '2,2,1,1,1,1,1,0,0', '--at', daysAgo(10));
  phone('check-in', '--instrument', 'phq9', '--answers', '1,1,1,1,0,1,0,0,0', '--at', daysAgo(3));
  phone('check-in', '--instrument', 'gad7', '--answers', '2,1,1,1,1,0,1', '--at', daysAgo(10));
  phone('check-in', '--instrument', 'gad7', '--answers', '1,1,0,1,0,0,1', '--at', daysAgo(3));
  phone('side-effect', '--effect', 'nausea_vomiting', '--severity', 'mild', '--at', daysAgo(5));
  phone('side-effect', '--effect', 'dizziness', '--severity', 'moderate', '--at', daysAgo(2));
  pastSession(now - 4 * 86_400_000);
  phone('journal', '--text', 'Felt lighter on the walk today; slept well.', '--at', daysAgo(2));
  phone('journal', '--text', 'A private thought that stays on the phone.', '--private', '--at', daysAgo(2));
  phone('vitals', '--systolic', '186', '--diastolic', '112', '--at', new Date(now - 60_000).toISOString());
  phone('sync');

  // The urgent reading is the first open alert.
  await page.goto(`${url}/dashboard`);
  const group = page.locator('section.group').first();
  assert.match(await group.getByRole('heading').textContent(), /client-0427\s+\d+ open\s+\(synced just now\)/);
  const first = group.locator('ol.alerts > li').first();
  await first.locator('.badge', { hasText: 'Urgent blood pressure' }).waitFor();
  assert.match(await first.textContent(), /186\/112 mmHg/);
  assert.match(await first.textContent(), / E[SD]T/, 'its time, labelled with the zone');
  await page.screenshot({ path: join(shots, 'alerts.png') });
  // Filtered by kind: the reading's group stays; by another kind, nothing of theirs.
  await page.getByLabel('Kind').selectOption('urgent_blood_pressure');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByText(/\(filtered\)/).waitFor();
  assert.match(page.url(), /kind=urgent_blood_pressure/);
  assert.equal(await page.locator('ol.alerts > li', { hasText: '186/112' }).count(), 1);
  await page.goto(`${url}/dashboard?kind=crisis_check_in`);
  await page.getByText('No open alerts match these filters.').waitFor();
  // At phone width the alerts read top to bottom, nothing sideways.
  const narrow = await newPage(390);
  await signIn(narrow, 'rivera', password);
  await narrow.locator('section.group').first().waitFor();
  assert.ok(await narrow.evaluate(() => document.documentElement.scrollWidth) <= 390);
  await narrow.screenshot({ path: join(shots, 'alerts-390.png'), fullPage: true });
  await narrow.context().close();
  await page.goto(`${url}/dashboard`);
  await group.waitFor();

  // Acknowledging asks what was done; it leaves the open list with who, when and the outcome.
  await first.getByRole('button', { name: /Acknowledge/ }).click();
  assert.equal(page.url(), `${url}/dashboard`, 'the form is not sent without an outcome');
  await first.getByRole('combobox', { name: /What was done/ }).selectOption({ label: 'Spoke with the client' });
  await first.getByRole('textbox', { name: /Note/ }).fill('Resting; will re-measure in 15 minutes.');
  await first.getByRole('button', { name: /Acknowledge/ }).click();
  await page.getByText('Alert acknowledged.').waitFor();
  assert.equal(await page.locator('ol.alerts > li', { hasText: '186/112' }).count(), 0);
  await page.getByRole('heading', { name: 'Recently acknowledged' }).waitFor();
  assert.match(await page.locator('table').textContent(), /by Dr\. Rivera: Spoke with the client/);
  await page.screenshot({ path: join(shots, 'acknowledged.png') });

  // Reopened by mistake-proofing: it is open again, then acknowledged once more.
  await page.getByRole('button', { name: /^Reopen: Urgent blood pressure/ }).click();
  await page.getByText('Alert reopened').waitFor();
  const reopened = page.locator('ol.alerts > li', { hasText: '186/112' });
  await reopened.getByRole('combobox', { name: /What was done/ }).selectOption('no_action_needed');
  await reopened.getByRole('button', { name: /Acknowledge/ }).click();
  await page.getByText('Alert acknowledged.').waitFor();

  // The client's page plots the reading with the limit and urgent lines.
  await page.goto(clientUrl);
  const plot = page.getByRole('img', { name: /Blood pressure over time/ });
  await plot.waitFor();
  const svg = await plot.evaluate((el) => el.outerHTML);
  for (const line of ['Limit 140', 'Limit 90', 'Urgent 180', 'Urgent 120']) {
    assert.equal(await plot.locator('text', { hasText: line }).count(), 1, `${line}: labelled once`);
  }
  // Legible at a phone's width: every text of the plot at least 10 px tall on the screen.
  const phoneView = await newPage(390);
  await signIn(phoneView, 'rivera', password);
  await phoneView.goto(clientUrl);
  const smallest = await phoneView.locator('#bp-plot svg').evaluate((svg) =>
    Math.min(...[...svg.querySelectorAll('text')].map((t) => t.getBoundingClientRect().height).filter((h) => h > 0)));
  assert.ok(smallest >= 10, `the smallest plot text is ${smallest} px tall at 390 px`);
  await phoneView.context().close();
  assert.ok((svg.match(/<circle/g) || []).length >= 5, 'every reading is drawn');
  await page.getByRole('img', { name: /PHQ-9 totals/ }).waitFor();
  await page.getByRole('img', { name: /Side effects over time/ }).waitFor();
  await page.getByText('Felt lighter on the walk today; slept well.').waitFor();
  const past = page.locator('details.session').first();
  assert.match(await past.textContent(), /ended/);
  assert.match(await past.textContent(), /ready at .*pack org\.katcore\.default v1/);
  assert.match(await past.textContent(), /incomplete at /, 'the refused start is in the audit trail');
  assert.equal(await page.getByText('A private thought').count(), 0, 'private entries never reach the clinic');

  // Schedule a session; the phone has it after its next sync.
  const date = inTwoDays();
  await page.locator('#schedule').getByLabel('Date').fill(date);
  await page.locator('#schedule').getByLabel("Time, the client's", { exact: true }).fill('10:00');
  await page.locator('#schedule').getByRole('button', { name: 'Schedule' }).click();
  await page.getByText('Session scheduled.').waitFor();
  await page.screenshot({ path: join(shots, 'client.png'), fullPage: true });

  phone('sync');
  const sessions = phone('sessions').filter((s) => s.scheduled_by === 'clinic');
  assert.equal(sessions.length, 1);
  assert.ok(sessions[0].scheduled_start.startsWith(`${date}T10:00:00`), sessions[0].scheduled_start);
  assert.equal(sessions[0].time_zone, zone);

  // The clients list shows them, and the page works at tablet width.
  const tablet = await newPage(820);
  await signIn(tablet, 'rivera', password);
  await tablet.getByRole('link', { name: 'Clients' }).click();
  await tablet.getByRole('link', { name: 'client-0427' }).waitFor();
  await tablet.screenshot({ path: join(shots, 'clients.png') });
  await tablet.context().close();

  // At phone width the clients and devices tables stack: nothing scrolls sideways.
  const phoneWidth = await newPage(390);
  await signIn(phoneWidth, 'rivera', password);
  for (const path of ['/dashboard/clients', clientUrl.replace(url, '')]) {
    await phoneWidth.goto(`${url}${path}`);
    const tables = phoneWidth.locator('table.stack');
    assert.ok(await tables.count() >= 1, `${path}: a stacked table`);
    for (const table of await tables.all()) {
      const { scroll, client } = await table.evaluate((t) => ({ scroll: t.scrollWidth, client: t.clientWidth }));
      assert.ok(scroll <= client + 1, `${path}: a table ${scroll} px wide in ${client} px`);
    }
    const page = await phoneWidth.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(page <= 390, `${path}: the page is ${page} px wide at 390 px`);
  }
  await phoneWidth.screenshot({ path: join(shots, 'client-390.png'), fullPage: true });
  await phoneWidth.context().close();
  await page.context().close();
});

test('a form without its CSRF token is refused and changes nothing', async () => {
  const page = await newPage();
  await signIn(page, 'rivera', password);
  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByRole('link', { name: 'client-0427' }).click();
  const notes = page.locator('form[action$="/notes"]');
  await notes.locator('input[name="csrf"]').evaluate((input) => input.remove());
  await notes.getByLabel('Add a note').fill('This note must not be written.');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/notes')),
    notes.getByRole('button', { name: 'Add note' }).click(),
  ]);
  assert.equal(response.status(), 403);
  await page.getByText(/this form has expired or did not come from the dashboard/).waitFor();
  await page.goBack();
  await page.reload();
  assert.equal(await page.getByText('This note must not be written.').count(), 0);
  await page.context().close();
});

test("a clinician of another clinic cannot open the client's page", async () => {
  const page = await newPage();
  await signIn(page, 'rivera', password);
  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByRole('link', { name: 'client-0427' }).click();
  const clientUrl = page.url().split('?')[0];
  await page.context().close();

  const other = await newPage();
  await signIn(other, 'lake', otherPassword);
  await other.getByRole('heading', { name: 'Open alerts' }).waitFor();
  assert.equal(await other.getByText('client-0427').count(), 0, "another clinic's alerts are not listed");
  const response = await other.goto(clientUrl);
  assert.equal(response.status(), 404);
  await other.getByRole('link', { name: 'Clients' }).click();
  assert.equal(await other.getByText('client-0427').count(), 0);
  await other.context().close();
});

test('long and hostile text a phone writes cannot bury or break the client page', async () => {
  const page = await newPage(1366);
  await signIn(page, 'rivera', password);
  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByRole('link', { name: 'client-0427' }).click();
  const clientUrl = page.url().split('?')[0];
  await page.getByRole('button', { name: 'Create an enrollment code' }).click();
  const code = (await page.locator('#enrollment-code').textContent()).trim();
  await page.context().close();

  // A second device, labelled with a right-to-left override, writes two
  // 100,000-character entries and one unbroken 100,000-character string.
  const tablet = (...args) => katctl(['device', '--data-dir', join(work, 'tablet'), ...args]);
  tablet('init');
  tablet('enroll', '--server', url, '--code', code, '--label', '\u202Eexe.live');
  const words = 'a long entry that goes on and on '.repeat(4000).slice(0, 100_000);
  tablet('journal', '--text', words);
  tablet('journal', '--text', words);
  tablet('journal', '--text', 'x'.repeat(100_000));
  tablet('sync');

  for (const width of [1366, 390]) {
    const view = await newPage(width);
    await signIn(view, 'rivera', password);
    await view.goto(clientUrl);
    const { wide, tall } = await view.evaluate(() =>
      ({ wide: document.documentElement.scrollWidth, tall: document.documentElement.scrollHeight }));
    assert.ok(wide <= width, `${width} px: the page is ${wide} px wide`);
    assert.ok(tall < 20_000, `${width} px: the page is ${tall} px tall`);
    // The label reads as written, its override stripped.
    const label = await view.locator('#devices-h ~ table td', { hasText: 'exe.live' }).first().textContent();
    assert.ok(!label.includes('\u202E') && label.includes('exe.live'), JSON.stringify(label));
    // Devices and Revoke are one link from the top.
    await view.getByRole('navigation', { name: 'On this page' }).getByRole('link', { name: 'Devices and revoking' })
      .click();
    const revoke = view.getByRole('button', { name: /Revoke/ }).first();
    await revoke.waitFor();
    assert.ok(await revoke.isVisible());
    const box = await revoke.boundingBox();
    assert.ok(box && box.y >= 0 && box.y < 900, `the Revoke button is in view: ${JSON.stringify(box)}`);
    await view.context().close();
  }
});

test('axe-core finds no serious or critical violation on any page, at desktop and phone widths', async () => {
  // An open alert, so the alerts page has its buttons and details.
  phone('vitals', '--systolic', '181', '--diastolic', '95', '--at', new Date(Date.now() - 30_000).toISOString());
  phone('sync');
  const found = [];
  for (const width of [1366, 390]) {
    const page = await newPage(width);
    await page.goto(`${url}/dashboard`);
    found.push(...(await axeViolations(page)).map((v) => `${width} px signin: ${v}`));
    await signIn(page, 'rivera', password);
    await page.getByRole('heading', { name: 'Open alerts' }).waitFor();
    await page.getByRole('link', { name: 'Clients' }).click();
    const clientUrl = await page.getByRole('link', { name: 'client-0427' }).getAttribute('href');
    for (const path of ['/dashboard', '/dashboard/clients', clientUrl, '/dashboard/packs', '/dashboard/no-such-page']) {
      await page.goto(`${url}${path}`);
      found.push(...(await axeViolations(page)).map((v) => `${width} px ${path}: ${v}`));
    }
    await page.context().close();
  }
  assert.deepEqual(found, []);
});
