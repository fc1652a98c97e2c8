// A ZIP of browser files, stored (no compression), built as a Blob that refers to the
// files instead of copying them: only the CRC-32 is computed here, reading each file once
// as a stream. It is what upload-zip takes for plain files (docs/files.md). Entries are
// UTF-8 names with no Unix mode (the service makes them 0644); no ZIP64, so the whole
// archive stays under 4 GiB (the service's upload limit is far below).

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

async function crc32(file) {
  let crc = 0xffffffff;
  const reader = file.stream().getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (let i = 0; i < value.length; i++) crc = CRC_TABLE[(crc ^ value[i]) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function dosTime(ms) {
  const d = new Date(ms || Date.now());
  const year = Math.max(d.getFullYear(), 1980);
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

// One header: `fields` are [size in bytes, value] pairs, then the name's bytes.
function header(fields, name) {
  const size = fields.reduce((sum, [n]) => sum + n, 0);
  const bytes = new Uint8Array(size + name.length);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const [n, value] of fields) {
    if (n === 2) view.setUint16(at, value, true);
    else view.setUint32(at, value, true);
    at += n;
  }
  bytes.set(name, at);
  return bytes;
}

const UTF8 = 0x0800; // general purpose flag: names are UTF-8
const MAX = 0xffffffff;

// `entries`: [{name: "dir/a.txt", file: File}], names relative (no leading "/").
// `onProgress(done, total)` while the CRCs are read. Resolves with a Blob (application/zip).
export async function zipFiles(entries, onProgress) {
  const parts = [];
  const central = [];
  let offset = 0;
  const total = entries.reduce((sum, e) => sum + e.file.size, 0);
  let read = 0;
  const encoder = new TextEncoder();
  for (const { name, file } of entries) {
    if (file.size >= MAX || offset >= MAX) throw new Error("too large for a browser-made ZIP (4 GiB)");
    const raw = encoder.encode(name);
    const crc = await crc32(file);
    read += file.size;
    if (onProgress) onProgress(read, total);
    const { time, date } = dosTime(file.lastModified);
    const common = [[2, 20], [2, UTF8], [2, 0], [2, time], [2, date], [4, crc], [4, file.size], [4, file.size], [2, raw.length], [2, 0]];
    const local = header([[4, 0x04034b50], ...common], raw);
    central.push(header([[4, 0x02014b50], [2, 20], ...common, [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]], raw));
    parts.push(local, file);
    offset += local.length + file.size;
  }
  const size = central.reduce((sum, c) => sum + c.length, 0);
  const end = header([[4, 0x06054b50], [2, 0], [2, 0], [2, central.length], [2, central.length], [4, size], [4, offset], [2, 0]], new Uint8Array(0));
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
