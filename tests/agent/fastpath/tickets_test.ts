import { assertEquals } from "../../support/assert.ts";
import { mintTicket, TicketBook } from "../../../agent/fastpath/tickets.ts";

Deno.test("tickets: one use, for the named peer, before expiry; bounded", () => {
  const book = new TicketBook({ max: 3 });
  const t = mintTicket();
  assertEquals(t.length, 43);
  book.expect(t, "h2", 1000, 0);
  assertEquals(book.consume(t, "h3", 10), "wrong-peer");
  assertEquals(book.consume(t, "h2", 10), "unknown", "a refused ticket is spent");
  book.expect("a", "h2", 1000, 0);
  assertEquals(book.consume("a", "h2", 2000), "expired");
  book.expect("b", "h2", 1000, 0);
  assertEquals(book.consume("b", "h2", 500), null);
  assertEquals(book.consume("b", "h2", 600), "unknown", "no replay");
  for (const x of ["c", "d", "e", "f"]) book.expect(x, "h2", 1000, 0);
  assertEquals(book.size, 3, "the oldest expectation gives way");
  assertEquals(book.consume("c", "h2", 1), "unknown");
  assertEquals(book.consume("forged", "h2", 1), "unknown");
});
