// Seed 001 "Download Files", verbatim functions; the calls at the end use the environment.
const axios = require('axios');
const fs = require('fs');
// Download single file
async function downloadFile(baseUrl, cuid, filePath, auth) {
  const response = await axios.get(
    `${baseUrl}/containers/${cuid}/download`,
    {
      params: { path: filePath },
      headers: { 'Authorization': `Basic ${auth}` },
      responseType: 'stream'
    }
  );
  // Save to file
  const fs = require('fs');
  const writer = fs.createWriteStream('downloaded_file');
  response.data.pipe(writer);
  return new Promise((resolve, reject) => {
    writer.on('finish', resolve);
    writer.on('error', reject);
  });
}
// Download directory as ZIP
async function downloadDirectory(baseUrl, cuid, dirPath, auth) {
  const response = await axios.get(
    `${baseUrl}/containers/${cuid}/download-zip`,
    {
      params: { path: dirPath },
      headers: { 'Authorization': `Basic ${auth}` },
      responseType: 'arraybuffer'
    }
  );
  // Save ZIP file
  fs.writeFileSync('container_backup.zip', response.data);
}
const auth = Buffer.from(`${process.env.DY_USER}:${process.env.DY_PASS}`).toString('base64');
(async () => {
  await downloadFile(process.env.BASE_URL, process.env.CUID, '/app/data/config.json', auth);
  await downloadDirectory(process.env.BASE_URL, process.env.CUID, '/app', auth);
  console.log('done');
})().catch(err => { console.error('Failed:', err.message); process.exit(1); });
