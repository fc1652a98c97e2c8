// Seed 001 "Non-Interactive Command Execution", verbatim but for the usage block,
// which takes its arguments from the environment.
const WebSocket = require('ws');
class ContainerExecutor {
  constructor(baseUrl, cuid, username, password) {
    this.wsUrl = `ws://${baseUrl.replace('http://', '')}/ws/${cuid}`;
    this.auth = Buffer.from(`${username}:${password}`).toString('base64');
  }
  async execute(command) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.wsUrl, {
        headers: {
          'Authorization': `Basic ${this.auth}`
        }
      });
      let output = '';
      let errorOutput = '';
      ws.on('open', () => {
        // Send command
        ws.send(JSON.stringify({
          type: 'stdin',
          data: command + '\n',
          encoding: 'utf8'
        }));
        // Send EOF/exit after command
        setTimeout(() => {
          ws.send(JSON.stringify({
            type: 'stdin',
            data: 'exit\n',
            encoding: 'utf8'
          }));
        }, 100);
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'stdout') {
          output += msg.encoding === 'base64'
            ? Buffer.from(msg.data, 'base64').toString()
            : msg.data;
        } else if (msg.type === 'stderr') {
          errorOutput += msg.encoding === 'base64'
            ? Buffer.from(msg.data, 'base64').toString()
            : msg.data;
        } else if (msg.type === 'exit') {
          ws.close();
          resolve({
            exitCode: msg.code,
            stdout: output,
            stderr: errorOutput
          });
        } else if (msg.type === 'error') {
          ws.close();
          reject(new Error(msg.error.message));
        }
      });
      ws.on('error', reject);
    });
  }
}
// Usage
const executor = new ContainerExecutor(
  process.env.BASE_URL,
  process.env.CUID,
  process.env.DY_USER,
  process.env.DY_PASS
);
executor.execute('ls -la /app')
  .then(result => {
    console.log('Exit code:', result.exitCode);
    console.log('Output:', result.stdout);
    if (result.stderr) {
      console.error('Errors:', result.stderr);
    }
  })
  .catch(err => { console.error('Failed:', err); process.exit(1); });
