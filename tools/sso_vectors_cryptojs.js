// Generates tests/vectors/sso_cryptojs.json: SSO blobs made the way
// HighLevel makes them, with crypto-js's AES and a string passphrase
// (FACTS §10), for tests/lua/sso_spec.lua. Development only: crypto-js is
// not a dependency of ghlua. Install it in a throwaway directory and run
// from the repository root:
//   (cd /tmp/cjs && npm install crypto-js@4.2.0)
//   NODE_PATH=/tmp/cjs/node_modules node tools/sso_vectors_cryptojs.js > tests/vectors/sso_cryptojs.json
// With a blob as the argument (and SECRET in the environment) it prints
// what crypto-js decrypts it to instead, to check blobs ghlua made:
//   SECRET=k node tools/sso_vectors_cryptojs.js "$(ghlua sso encrypt ...)"
// Each vector: {name, secret, plaintext, blob}; salts are random, so every
// run gives new blobs, and each blob is decrypted back here before it is
// written.
const CryptoJS = require('crypto-js');

if (process.argv[2]) {
  const text = CryptoJS.AES.decrypt(process.argv[2], process.env.SECRET || '').toString(CryptoJS.enc.Utf8);
  process.stdout.write(text + '\n');
  process.exit(0);
}

const contexts = [
  ['agency context', '6a1b3c5d-7e9f-4a2b-8c4d-0e1f2a3b4c5d',
    { userId: 'MKQJ7wOVVmNOMvrnKKKK', companyId: 'GNb7aIv4rQFVb9iwNl5K', role: 'admin', type: 'agency',
      userName: 'Ada Lovelace', email: 'ada@example.com' }],
  ['location context', '6a1b3c5d-7e9f-4a2b-8c4d-0e1f2a3b4c5d',
    { userId: 'MKQJ7wOVVmNOMvrnKKKK', companyId: 'GNb7aIv4rQFVb9iwNl5K', role: 'user', type: 'location',
      userName: 'Grace Hopper', email: 'grace@example.com', activeLocation: 've9EPM428h8vShlRW1KT' }],
  ['unicode name', 'k',
    { userId: 'u1', companyId: 'c1', role: 'admin', type: 'agency', userName: 'Zoë Ñúñez 東京',
      email: 'zoe@example.com' }],
  ['a long secret', 'x'.repeat(200),
    { userId: 'u2', companyId: 'c2', role: 'user', type: 'location', userName: 'Lin', email: 'lin@example.com',
      activeLocation: 'loc2' }],
];

const vectors = contexts.map(([name, secret, ctx]) => {
  const plaintext = JSON.stringify(ctx);
  const blob = CryptoJS.AES.encrypt(plaintext, secret).toString();
  const back = CryptoJS.AES.decrypt(blob, secret).toString(CryptoJS.enc.Utf8);
  if (back !== plaintext) throw new Error('crypto-js did not decrypt its own blob: ' + name);
  return { name: name + ' (crypto-js)', secret, plaintext, blob };
});

const version = require('crypto-js/package.json').version;
process.stdout.write('{"generator":"tools/sso_vectors_cryptojs.js","crypto-js":' + JSON.stringify(version)
  + ',"vectors":[\n' + vectors.map((v) => '  ' + JSON.stringify(v)).join(',\n') + '\n]}\n');
