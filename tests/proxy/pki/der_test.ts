import assert from "node:assert/strict";
import {
  children,
  oid,
  readElement,
  seq,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
} from "../../../proxy/pki/der.ts";
import { LeafTemplate } from "../../../proxy/pki/leaf_certificate.ts";
import { ipLiteralBytes as ipBytes } from "../../../agent/config/types.ts";

Deno.test("der: lengths in short and long form, read back as written", () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 100_000]) {
    const body = new Uint8Array(n).fill(7);
    const e = readElement(tlv(0x04, body));
    assert.equal(e.tag, 0x04);
    assert.equal(e.body.length, n, `length ${n}`);
  }
  assert.equal(tlv(0x04, new Uint8Array(128)).subarray(0, 3).toHex(), "048180");
  assert.equal(tlv(0x04, new Uint8Array(256)).subarray(0, 4).toHex(), "04820100");
});

Deno.test("der: integers are positive and shortest", () => {
  assert.equal(smallInteger(0).toHex(), "020100");
  assert.equal(smallInteger(2).toHex(), "020102");
  assert.equal(smallInteger(128).toHex(), "02020080");
  assert.equal(unsignedInteger(Uint8Array.fromHex("0000ff01")).toHex(), "020300ff01");
  assert.equal(unsignedInteger(Uint8Array.fromHex("7f")).toHex(), "02017f");
});

Deno.test("der: object identifiers with multi-byte arcs", () => {
  assert.equal(oid("2.5.29.17").toHex(), "0603551d11");
  assert.equal(oid("1.2.840.113549.1.1.11").toHex(), "06092a864886f70d01010b");
  assert.equal(oid("1.3.6.1.5.5.7.3.1").toHex(), "06082b06010505070301");
});

Deno.test("der: times are UTCTime until 2049, GeneralizedTime after, to the second", () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(readElement(b).body);
  assert.equal(readElement(time(Date.UTC(2026, 11, 2, 8, 14, 3, 999))).tag, 0x17);
  assert.equal(text(time(Date.UTC(2026, 11, 2, 8, 14, 3, 999))), "261202081403Z");
  assert.equal(readElement(time(Date.UTC(2050, 0, 1))).tag, 0x18);
  assert.equal(text(time(Date.UTC(2050, 0, 1))), "20500101000000Z");
});

Deno.test("der: a truncated or indefinite element is a RangeError, never a wrong read", () => {
  const good = seq(smallInteger(5), smallInteger(6));
  assert.equal(children(readElement(good).body).length, 2);
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(() => children(readElement(good.subarray(0, cut)).body), RangeError);
  }
  assert.throws(() => readElement(Uint8Array.fromHex("3080")), RangeError);
});

Deno.test("leaf: IP literals become address bytes, anything else is not an IP", () => {
  assert.equal(ipBytes("10.1.2.3")?.toHex(), "0a010203");
  assert.equal(ipBytes("::1")?.toHex(), "00".repeat(15) + "01");
  assert.equal(ipBytes("fd00::7:0")?.toHex(), "fd00" + "0000".repeat(5) + "00070000");
  assert.equal(ipBytes("1:2:3:4:5:6:7:8")?.toHex(), "00010002000300040005000600070008");
  for (const name of ["proxy.vnet", "300.1.1.1", "1::2::3", "1:2:3:4:5:6:7:8:9", "::g", "1:2"]) {
    assert.equal(ipBytes(name), null, name);
  }
});

Deno.test("leaf: only uncompressed P-256 keys and non-empty names are signed", async () => {
  const ca = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  );
  const caSpki = new Uint8Array(await crypto.subtle.exportKey("spki", ca.publicKey));
  // A minimal stand-in CA certificate: only the fields the template reads.
  const name = seq(tlv(0x31, seq(oid("2.5.4.3"), tlv(0x0c, new TextEncoder().encode("ca")))));
  const tbs = seq(tlv(0xa0, smallInteger(2)), smallInteger(1), seq(), name, seq(), name, caSpki);
  const template = LeafTemplate.forCa(seq(tbs), ca.privateKey);
  const p384 = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-384" },
    true,
    ["sign", "verify"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", p384.publicKey));
  const req = { names: ["a.vnet"], spki, notBefore: 0, notAfter: 1 };
  assert.throws(() => template.issue(req), TypeError);
  assert.throws(() => template.issue({ ...req, spki: caSpki, names: [] }), TypeError);
  assert.throws(() => template.issue({ ...req, spki: caSpki, names: ["1::2::3"] }), TypeError);
  const ok = template.issue({ ...req, spki: caSpki });
  assert.equal(readElement(ok.der).raw.length, ok.der.length);
});
