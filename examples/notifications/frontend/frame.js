// The notifications module's console page: a micro-frontend in the console's sandboxed frame.
// It has no origin, no cookie and no network of its own: it asks the shell for its module's
// routes through the postMessage contract (docs/console.md, "Micro-frontends").
(function () {
  'use strict';
  var pending = new Map();
  var next = 1;

  function send(message) {
    message.plinth = 1;
    window.parent.postMessage(message, '*');
  }

  /** `method` on this module's `path` (`/sent`), through the shell. */
  function request(method, path, body) {
    return new Promise(function (resolve, reject) {
      var id = next++;
      pending.set(id, { resolve: resolve, reject: reject });
      send({ type: 'request', id: id, method: method, path: path, body: body });
    });
  }

  function cell(text) {
    var td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function render(context) {
    var status = document.getElementById('status');
    status.textContent = 'Loading what was sent for ' + context.tenant + '…';
    request('GET', '/sent').then(function (sent) {
      var rows = sent.map(function (n) {
        var tr = document.createElement('tr');
        tr.append(cell(n.to), cell(n.subject), cell(n.channel));
        return tr;
      });
      document.getElementById('sent').replaceChildren.apply(document.getElementById('sent'), rows);
      status.textContent = sent.length + ' sent for ' + context.tenant + '.';
      send({ type: 'resize', height: document.documentElement.scrollHeight });
    }, function (error) {
      status.textContent = 'Cannot list what was sent: ' + error.message;
    });
  }

  window.addEventListener('message', function (event) {
    var message = event.data;
    if (event.source !== window.parent || !message || message.plinth !== 1) return;
    if (message.type === 'init') {
      render(message.context);
    } else if (message.type === 'response' && pending.has(message.id)) {
      var waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.status < 400) waiting.resolve(message.body);
      else waiting.reject(new Error((message.body && (message.body.detail || message.body.title)) || 'failed with ' + message.status));
    }
  });
  send({ type: 'ready' });
})();
