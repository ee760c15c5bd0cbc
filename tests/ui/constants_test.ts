/**
 * The live page's copy of the API's shared words (proxy/page/constants.js, plain browser JS)
 * against their one definition in TypeScript (proxy/api_types.ts).
 */
import { assertEquals } from "../support/assert.ts";
import * as api from "../../proxy/api_types.ts";
import * as page from "../../proxy/page/constants.js";

Deno.test("page constants: the page names the LAN and the event types as the API does", () => {
  assertEquals(page.LAN_HOST, api.LAN_HOST);
  assertEquals(page.EVENT_TYPES, [...api.EVENT_TYPES]);
  assertEquals(Object.keys(page).sort(), ["EVENT_TYPES", "LAN_HOST"]);
});
