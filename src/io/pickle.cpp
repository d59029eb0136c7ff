// Restricted pickle interpreter: see pickle.hpp for what it accepts and why.
#include "vardp/io/pickle.hpp"

#include <cstring>
#include <memory>
#include <unordered_map>

#include "vardp/util/error.hpp"

namespace vardp::io {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::int64: return "int64";
    case DType::int32: return "int32";
    case DType::int16: return "int16";
    case DType::int8: return "int8";
    case DType::uint8: return "uint8";
    case DType::boolean: return "bool";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::float64:
    case DType::int64: return 8;
    case DType::float32:
    case DType::int32: return 4;
    case DType::float16:
    case DType::bfloat16:
    case DType::int16: return 2;
    case DType::int8:
    case DType::uint8:
    case DType::boolean: return 1;
  }
  return 0;
}

bool dtype_from_name(const std::string& name, DType* out) {
  static const DType all[] = {DType::float32, DType::float64, DType::float16, DType::bfloat16,
                              DType::int64,   DType::int32,   DType::int16,   DType::int8,
                              DType::uint8,   DType::boolean};
  for (DType t : all) {
    if (name == dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

namespace {

// ---- limits that keep a hostile stream from exhausting the stack or the memory ----------
constexpr int kMaxDepth = 64;            // nesting of containers (a state dict needs about 5)
constexpr int kMaxDims = 64;             // tensor rank
constexpr size_t kMaxNameChars = 200;    // of a GLOBAL module/name shown in an error

// ---- values of the restricted machine ---------------------------------------------------
enum class Kind { none, boolean, integer, floating, string, bytes, tuple, list, dict, global,
                  storage, tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

enum class Global { ordered_dict, rebuild_tensor_v2, rebuild_parameter, storage_type };

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::none;
  int64_t i = 0;          // integer, boolean
  double f = 0;           // floating
  std::string s;          // string, bytes
  std::vector<ValuePtr> items;                         // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> pairs;    // dict, insertion order
  std::unordered_map<std::string, size_t> index;       // dict: key -> position in pairs
  bool ordered = false;   // dict created through collections.OrderedDict
  bool has_state = false; // dict received a BUILD (OrderedDict's __dict__, i.e. _metadata)
  Global global = Global::ordered_dict;
  DType dtype = DType::float32;  // global storage_type, storage, tensor
  std::string storage_key, location;  // storage
  int64_t numel = 0;                  // storage
  TensorRecord tensor;                // tensor
  // Containers become immutable once placed inside another value: a pickler never does
  // otherwise for acyclic data, and it makes reference cycles impossible.
  bool frozen = false;
  int depth = 0;
};

std::string printable(const std::string& s) {
  std::string out;
  for (size_t k = 0; k < s.size() && k < kMaxNameChars; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += str("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    }
  }
  if (s.size() > kMaxNameChars) out += "...";
  return out;
}

bool valid_utf8(const std::string& s) {
  size_t k = 0;
  const size_t n = s.size();
  while (k < n) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      ++k;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (k + static_cast<size_t>(extra) >= n) return false;
    for (int j = 1; j <= extra; ++j) {
      const unsigned char cc = static_cast<unsigned char>(s[k + j]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10ffff) return false;  // overlong or out of range
    k += static_cast<size_t>(extra) + 1;
  }
  return true;
}

// Storage classes that torch.save writes (torch.<Name>Storage) and their element types.
bool storage_dtype(const std::string& name, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"FloatStorage", DType::float32},  {"DoubleStorage", DType::float64},
      {"HalfStorage", DType::float16},   {"BFloat16Storage", DType::bfloat16},
      {"LongStorage", DType::int64},     {"IntStorage", DType::int32},
      {"ShortStorage", DType::int16},    {"CharStorage", DType::int8},
      {"ByteStorage", DType::uint8},     {"BoolStorage", DType::boolean},
      {"UntypedStorage", DType::uint8},  // torch 2.x untyped storages count bytes
  };
  for (const auto& [n, t] : table) {
    if (name == n) {
      *out = t;
      return true;
    }
  }
  return false;
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

class Machine {
 public:
  Machine(const std::string& bytes, const std::string& context) : b_(bytes), ctx_(context) {}

  ValuePtr run();
  int protocol() const { return protocol_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str(what, " (pickle byte ", op_pos_, ")"), ctx_);
  }

 private:
  // ---- reading the byte stream ----
  void need(uint64_t n) const {
    if (n > b_.size() - pos_)
      fail(str("truncated pickle: opcode ", opcode_name(op_) ? opcode_name(op_) : "?",
               " needs ", n, " more bytes, ", b_.size() - pos_, " left"));
  }
  uint64_t read_le(int nbytes) {
    need(static_cast<uint64_t>(nbytes));
    uint64_t v = 0;
    for (int k = 0; k < nbytes; ++k)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(b_[pos_ + k])) << (8 * k);
    pos_ += static_cast<size_t>(nbytes);
    return v;
  }
  std::string read_bytes(uint64_t n) {
    need(n);
    std::string out = b_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  std::string read_line() {
    const size_t nl = b_.find('\n', pos_);
    if (nl == std::string::npos) fail("truncated pickle: GLOBAL without a terminating newline");
    std::string out = b_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return out;
  }

  // ---- the stack ----
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= stack_floor()) fail("pickle stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= stack_floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("pickle opcode needs a MARK but none is open");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(std::make_move_iterator(stack_.begin() + static_cast<long>(m)),
                              std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }

  // ---- values ----
  static ValuePtr make(Kind k) {
    auto v = std::make_shared<Value>();
    v->kind = k;
    return v;
  }
  ValuePtr make_int(int64_t x) {
    auto v = make(Kind::integer);
    v->i = x;
    return v;
  }
  ValuePtr make_string(std::string s) {
    if (!valid_utf8(s)) fail("pickle string is not valid UTF-8");
    auto v = make(Kind::string);
    v->s = std::move(s);
    return v;
  }
  // Places `child` inside `parent` (tuple item, list item, dict key/value, BUILD state).
  void adopt(Value& parent, const ValuePtr& child) {
    if (child.get() == &parent) fail("pickle container would contain itself");
    child->frozen = true;
    if (child->depth + 1 > parent.depth) parent.depth = child->depth + 1;
    if (parent.depth > kMaxDepth) fail(str("pickle nesting deeper than ", kMaxDepth));
  }
  void check_mutable(const Value& v, const char* what) {
    if (v.kind != Kind::list && v.kind != Kind::dict)
      fail(str(what, " applied to a ", kind_name(v.kind), ", which this reader does not allow"));
    if (v.frozen) fail(str(what, " on a container that is already part of another value"));
  }
  ValuePtr make_tuple(std::vector<ValuePtr> items) {
    auto t = make(Kind::tuple);
    for (const auto& it : items) adopt(*t, it);
    t->items = std::move(items);
    return t;
  }
  void dict_set(Value& d, ValuePtr key, ValuePtr value) {
    check_mutable(d, "SETITEM");
    if (d.kind != Kind::dict) fail(str("SETITEM applied to a ", kind_name(d.kind)));
    std::string idx;
    if (key->kind == Kind::string) {
      idx = "s" + key->s;
    } else if (key->kind == Kind::integer) {
      idx = str("i", key->i);
    } else {
      fail(str("dict key of type ", kind_name(key->kind), " is not supported"));
    }
    adopt(d, key);
    adopt(d, value);
    auto [it, inserted] = d.index.emplace(idx, d.pairs.size());
    if (inserted) {
      d.pairs.emplace_back(std::move(key), std::move(value));
    } else {
      d.pairs[it->second].second = std::move(value);  // Python: same key keeps its place
    }
  }
  void list_append(Value& l, ValuePtr item) {
    check_mutable(l, "APPEND");
    if (l.kind != Kind::list) fail(str("APPEND applied to a ", kind_name(l.kind)));
    adopt(l, item);
    l.items.push_back(std::move(item));
  }

  void memo_put(uint64_t idx) {
    // A hash map, not a vector: a hostile index (LONG_BINPUT 0xffffffff) costs one entry.
    memo_[idx] = top();
  }
  ValuePtr memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail(str("pickle memo entry ", idx, " read before it was written"));
    return it->second;
  }

  ValuePtr resolve_global(const std::string& module, const std::string& name);
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);
  void build(const ValuePtr& target, const ValuePtr& state);
  int64_t as_int(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::integer) fail(str(what, " must be an int, found ", kind_name(v->kind)));
    return v->i;
  }
  std::string as_text(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::string && v->kind != Kind::bytes)
      fail(str(what, " must be a string, found ", kind_name(v->kind)));
    return v->s;
  }
  std::vector<int64_t> as_int_tuple(const ValuePtr& v, const char* what) {
    if (v->kind != Kind::tuple && v->kind != Kind::list)
      fail(str(what, " must be a tuple of ints, found ", kind_name(v->kind)));
    if (v->items.size() > static_cast<size_t>(kMaxDims))
      fail(str(what, " has ", v->items.size(), " entries, more than ", kMaxDims));
    std::vector<int64_t> out;
    for (const auto& it : v->items) out.push_back(as_int(it, what));
    return out;
  }

  const std::string& b_;
  const std::string& ctx_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  int protocol_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, std::pair<DType, int64_t>> storages_;  // key -> dtype, numel
};

ValuePtr Machine::resolve_global(const std::string& module, const std::string& name) {
  auto g = make(Kind::global);
  DType dt;
  if (module == "collections" && name == "OrderedDict") {
    g->global = Global::ordered_dict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g->global = Global::rebuild_tensor_v2;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g->global = Global::rebuild_parameter;
  } else if (module == "torch" && storage_dtype(name, &dt)) {
    g->global = Global::storage_type;
    g->dtype = dt;
  } else {
    fail(str("pickle global '", printable(module), ".", printable(name),
             "' is not allowed: a state dict may only reference collections.OrderedDict, "
             "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and "
             "torch.*Storage (nothing in the file is executed)"));
  }
  return g;
}

ValuePtr Machine::persistent_load(const ValuePtr& pid) {
  // torch.save: ('storage', torch.<T>Storage, key, location, numel)
  if (pid->kind != Kind::tuple || pid->items.size() != 5)
    fail("persistent id is not the 5-tuple ('storage', type, key, location, numel) of torch.save");
  const auto& it = pid->items;
  if (as_text(it[0], "persistent id tag") != "storage")
    fail("persistent id tag '" + printable(it[0]->s) + "' is not 'storage'");
  if (it[1]->kind != Kind::global || it[1]->global != Global::storage_type)
    fail("persistent id does not name a torch storage type");
  auto s = make(Kind::storage);
  s->dtype = it[1]->dtype;
  s->storage_key = as_text(it[2], "storage key");
  s->location = as_text(it[3], "storage location");
  s->numel = as_int(it[4], "storage size");
  if (s->storage_key.empty() || s->storage_key.size() > 64 ||
      s->storage_key.find_first_of("/\\") != std::string::npos || s->storage_key == "." ||
      s->storage_key == "..")
    fail("storage key '" + printable(s->storage_key) + "' is not a plain record name");
  if (s->numel < 0) fail(str("storage '", s->storage_key, "' has negative size ", s->numel));
  auto [pos, inserted] = storages_.emplace(s->storage_key, std::make_pair(s->dtype, s->numel));
  if (!inserted && (pos->second.first != s->dtype || pos->second.second != s->numel))
    fail(str("storage '", printable(s->storage_key), "' is declared twice with different types ",
             "or sizes (", dtype_name(pos->second.first), "[", pos->second.second, "] and ",
             dtype_name(s->dtype), "[", s->numel, "])"));
  return s;
}

ValuePtr Machine::reduce(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Kind::global)
    fail(str("REDUCE calls a ", kind_name(callable->kind), ", not an allowed global"));
  if (args->kind != Kind::tuple) fail("REDUCE arguments are not a tuple");
  const auto& a = args->items;
  switch (callable->global) {
    case Global::ordered_dict: {
      if (!a.empty()) fail("collections.OrderedDict called with arguments");
      auto d = make(Kind::dict);
      d->ordered = true;
      return d;
    }
    case Global::rebuild_tensor_v2: {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() != 6 && a.size() != 7)
        fail(str("_rebuild_tensor_v2 takes 6 or 7 arguments, found ", a.size()));
      if (a[0]->kind != Kind::storage) fail("_rebuild_tensor_v2: first argument is not a storage");
      auto t = make(Kind::tensor);
      TensorRecord& r = t->tensor;
      r.dtype = a[0]->dtype;
      r.storage_key = a[0]->storage_key;
      r.location = a[0]->location;
      r.storage_numel = a[0]->numel;
      r.storage_offset = as_int(a[1], "tensor storage offset");
      r.shape = as_int_tuple(a[2], "tensor size");
      r.strides = as_int_tuple(a[3], "tensor stride");
      if (a[4]->kind != Kind::boolean) fail("_rebuild_tensor_v2: requires_grad is not a bool");
      r.requires_grad = a[4]->i != 0;
      if (a[5]->kind != Kind::dict || !a[5]->pairs.empty())
        fail("_rebuild_tensor_v2: tensors with backward hooks are not supported");
      if (a.size() == 7 && a[6]->kind != Kind::none &&
          !(a[6]->kind == Kind::dict && a[6]->pairs.empty()))
        fail("_rebuild_tensor_v2: tensor metadata (subclass attributes) is not supported");
      if (r.shape.size() != r.strides.size())
        fail(str("tensor has ", r.shape.size(), " sizes but ", r.strides.size(), " strides"));
      if (r.storage_offset < 0) fail(str("negative storage offset ", r.storage_offset));
      for (size_t k = 0; k < r.shape.size(); ++k) {
        if (r.shape[k] < 0) fail(str("negative tensor size ", r.shape[k]));
        if (r.strides[k] < 0) fail(str("negative tensor stride ", r.strides[k]));
      }
      return t;
    }
    case Global::rebuild_parameter: {
      // nn.Parameter: (tensor, requires_grad, backward_hooks)
      if (a.size() != 3) fail(str("_rebuild_parameter takes 3 arguments, found ", a.size()));
      if (a[0]->kind != Kind::tensor) fail("_rebuild_parameter: first argument is not a tensor");
      if (a[1]->kind != Kind::boolean) fail("_rebuild_parameter: requires_grad is not a bool");
      if (a[2]->kind != Kind::dict || !a[2]->pairs.empty())
        fail("_rebuild_parameter: parameters with backward hooks are not supported");
      auto t = make(Kind::tensor);
      t->tensor = a[0]->tensor;
      t->tensor.requires_grad = a[1]->i != 0;
      return t;
    }
    case Global::storage_type:
      fail("REDUCE on a torch storage type (storages may only appear in persistent ids)");
  }
  fail("REDUCE of an unknown global");
}

void Machine::build(const ValuePtr& target, const ValuePtr& state) {
  // OrderedDict.__reduce__ passes its instance __dict__ as BUILD state: for module state dicts
  // that is {'_metadata': OrderedDict(module -> {'version': n})}. It carries no tensors.
  if (target->kind != Kind::dict || !target->ordered)
    fail(str("BUILD on a ", kind_name(target->kind), " is not allowed (only OrderedDict state)"));
  if (target->frozen) fail("BUILD on a container that is already part of another value");
  if (target->has_state) fail("BUILD applied twice to the same OrderedDict");
  if (state->kind != Kind::dict) fail("BUILD state of an OrderedDict is not a dict");
  for (const auto& [k, v] : state->pairs) {
    if (k->kind != Kind::string || k->s != "_metadata")
      fail("OrderedDict BUILD state has attribute '" +
           printable(k->kind == Kind::string ? k->s : std::string(kind_name(k->kind))) +
           "'; only '_metadata' is allowed");
    if (v->kind != Kind::dict) fail("OrderedDict _metadata is not a dict");
  }
  adopt(*target, state);
  target->has_state = true;
}

ValuePtr Machine::run() {
  while (true) {
    if (pos_ >= b_.size()) fail("truncated pickle: no STOP opcode");
    op_pos_ = pos_;
    op_ = static_cast<uint8_t>(b_[pos_++]);
    switch (op_) {
      case 0x80: {  // PROTO
        protocol_ = static_cast<int>(read_le(1));
        if (protocol_ < 2 || protocol_ > 5)
          fail(str("pickle protocol ", protocol_, " is not supported (torch.save uses 2 to 5)"));
        break;
      }
      case 0x95: {  // FRAME: a length hint for buffered readers; the data follows inline
        const uint64_t n = read_le(8);
        if (n > b_.size() - pos_) fail("pickle FRAME is longer than the rest of the stream");
        break;
      }
      case '.': {  // STOP
        if (!marks_.empty()) fail("pickle ended with an open MARK");
        if (stack_.size() != 1) fail(str("pickle ended with ", stack_.size(), " stack items, not 1"));
        return stack_.back();
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': pop(); break;
      case '1': pop_to_mark(); break;
      case '2': push(top()); break;
      case 'N': push(make(Kind::none)); break;
      case 0x88:
      case 0x89: {
        auto v = make(Kind::boolean);
        v->i = op_ == 0x88;
        push(v);
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))))); break;
      case 'K': push(make_int(static_cast<int64_t>(read_le(1)))); break;
      case 'M': push(make_int(static_cast<int64_t>(read_le(2)))); break;
      case 0x8a:
      case 0x8b: {  // LONG1 / LONG4: little-endian two's complement of n bytes
        const uint64_t n = op_ == 0x8a ? read_le(1) : read_le(4);
        if (n > 8) fail(str("pickle integer of ", n, " bytes does not fit in 64 bits"));
        uint64_t v = n ? read_le(static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign
        int64_t sv;
        std::memcpy(&sv, &v, sizeof sv);
        push(make_int(sv));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k)
          bits = (bits << 8) | static_cast<unsigned char>(b_[pos_ + static_cast<size_t>(k)]);
        pos_ += 8;
        auto v = make(Kind::floating);
        std::memcpy(&v->f, &bits, sizeof bits);
        push(v);
        break;
      }
      case 'X': push(make_string(read_bytes(read_le(4)))); break;
      case 0x8c: push(make_string(read_bytes(read_le(1)))); break;
      case 0x8d: push(make_string(read_bytes(read_le(8)))); break;
      case 'B':
      case 'C':
      case 0x8e: {
        const int w = op_ == 'B' ? 4 : op_ == 'C' ? 1 : 8;
        auto v = make(Kind::bytes);
        v->s = read_bytes(read_le(w));
        push(v);
        break;
      }
      case ')': push(make(Kind::tuple)); break;
      case 't': push(make_tuple(pop_to_mark())); break;
      case 0x85:
      case 0x86:
      case 0x87: {
        const size_t n = static_cast<size_t>(op_ - 0x84);
        std::vector<ValuePtr> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case ']': push(make(Kind::list)); break;
      case 'l': {
        auto items = pop_to_mark();
        auto l = make(Kind::list);
        for (auto& it : items) list_append(*l, std::move(it));
        push(l);
        break;
      }
      case 'a': {
        ValuePtr item = pop();
        list_append(*top(), std::move(item));
        break;
      }
      case 'e': {
        auto items = pop_to_mark();
        ValuePtr l = top();
        for (auto& it : items) list_append(*l, std::move(it));
        break;
      }
      case '}': push(make(Kind::dict)); break;
      case 'd': {
        auto items = pop_to_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        auto d = make(Kind::dict);
        for (size_t k = 0; k < items.size(); k += 2) dict_set(*d, items[k], items[k + 1]);
        push(d);
        break;
      }
      case 's': {
        ValuePtr value = pop();
        ValuePtr key = pop();
        dict_set(*top(), std::move(key), std::move(value));
        break;
      }
      case 'u': {
        auto items = pop_to_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        ValuePtr d = top();
        for (size_t k = 0; k < items.size(); k += 2) dict_set(*d, items[k], items[k + 1]);
        break;
      }
      case 'q': memo_put(read_le(1)); break;
      case 'r': memo_put(read_le(4)); break;
      case 0x94: memo_put(memo_.size()); break;
      case 'h': push(memo_get(read_le(1))); break;
      case 'j': push(memo_get(read_le(4))); break;
      case 'c': {
        const std::string module = read_line();
        const std::string name = read_line();
        push(resolve_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL (protocol 4+): module and name come from the stack
        ValuePtr name = pop();
        ValuePtr module = pop();
        if (name->kind != Kind::string || module->kind != Kind::string)
          fail("STACK_GLOBAL needs two strings on the stack");
        push(resolve_global(module->s, name->s));
        break;
      }
      case 'Q': {
        ValuePtr pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'R': {
        ValuePtr args = pop();
        ValuePtr callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {
        ValuePtr state = pop();
        build(top(), state);
        break;
      }
      default: {
        const char* name = opcode_name(op_);
        if (name)
          fail(str("pickle opcode ", name, " (0x", "0123456789abcdef"[op_ >> 4],
                   "0123456789abcdef"[op_ & 15], ") is not allowed in a state dict"));
        fail(str("unknown pickle opcode 0x", "0123456789abcdef"[op_ >> 4],
                 "0123456789abcdef"[op_ & 15]));
      }
    }
  }
}

}  // namespace

PickledStateDict read_state_dict_pickle(const std::string& bytes, const std::string& context) {
  Machine m(bytes, context);
  ValuePtr root = m.run();
  PickledStateDict out;
  out.protocol = m.protocol();
  if (root->kind != Kind::dict)
    throw Error(str("the pickled object is a ", kind_name(root->kind),
                    ", not a state dict (a dict of tensors)"), context);
  out.ordered = root->ordered;
  out.has_metadata = root->has_state;
  out.entries.reserve(root->pairs.size());
  for (const auto& [k, v] : root->pairs) {
    if (k->kind != Kind::string)
      throw Error(str("state dict key of type ", kind_name(k->kind), " (keys must be strings)"),
                  context);
    if (v->kind != Kind::tensor) {
      std::string hint;
      if (v->kind == Kind::dict)
        hint = " (a nested dict: this looks like a training checkpoint; save the model's "
               "state_dict() itself)";
      throw Error(str("state dict entry '", printable(k->s), "' is a ", kind_name(v->kind),
                      ", not a tensor", hint), context);
    }
    if (k->s.empty()) throw Error("state dict has an empty key", context);
    out.entries.emplace_back(k->s, v->tensor);
  }
  return out;
}

}  // namespace vardp::io
