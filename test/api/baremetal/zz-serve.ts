import { startCloud } from '../../harness.ts';
const c = await startCloud();
console.log(JSON.stringify({ url: c.url, pw: c.adminPassword, dataDir: c.dataDir }));
setInterval(() => {}, 100000);
