// Loads an Edgeway docs page in headless Chromium (Debian's, through playwright-core) and
// prints what it rendered as JSON: the page title, each operation's method and path, and any
// errors the page logged. Takes a screenshot too.
//
//   node tests/tools/docs-page.mjs URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url, { waitUntil: "load", timeout: 30000 });
  await page.waitForSelector(".opblock", { timeout: 30000 });
  const operations = await page.$$eval(".opblock-summary", (blocks) =>
    blocks.map((b) => ({
      method: b.querySelector(".opblock-summary-method")?.textContent?.trim(),
      path: b.querySelector(".opblock-summary-path")?.getAttribute("data-path"),
    })),
  );
  const title = await page.$eval(".info .title", (t) => t.childNodes[0].textContent.trim());
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ title, operations, errors }));
} finally {
  await browser.close();
}
