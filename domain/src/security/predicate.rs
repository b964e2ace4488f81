//! Row-level predicates (`using`, `check`, criteria sharing rules): the
//! SQL-like conditions the protocol writes, such as
//! `owner = current_user.id AND status <> 'archived'`.
//!
//! Grammar: `OR`, `AND`, `NOT`, parentheses; comparisons `= == != <> < <= > >=`,
//! `IS [NOT] NULL`, `[NOT] IN (a, b)`, `[NOT] LIKE 'pattern'`; terms are field
//! names (dotted through relations), quoted texts, numbers, `true`, `false`,
//! `null` and `current_user.<id|email|name|tenant_id|profile|role>`.
//! A predicate is parsed once, when the app loads, and compiled into a query
//! filter per caller ([`Predicate::compile`]): context values become literals,
//! and comparisons between known values are folded to true or false.

use crate::query::{Condition, Filter, Op, Operand};
use crate::value::Value;

use super::principal::Principal;

/// The context keys a predicate may name after `current_user.`.
const CONTEXT_KEYS: [&str; 8] = ["id", "user_id", "email", "name", "tenant_id", "tenant", "profile", "role"];

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    Compare { left: Term, op: Op, right: Term },
    Const(bool),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Field(String),
    Literal(Value),
    /// `current_user.<key>` (`roles` is accepted for `role`).
    Context(String),
    List(Vec<Term>),
}

/// A filter that every record matches (`id` is never null).
pub fn always() -> Filter {
    Filter::Cond(Condition { field: "id".into(), op: Op::Null, value: Operand::Value(Value::Bool(false)) })
}

/// A filter that no record matches.
pub fn never() -> Filter {
    Filter::Cond(Condition { field: "id".into(), op: Op::Null, value: Operand::Value(Value::Bool(true)) })
}

impl Predicate {
    /// The predicate as a query filter for this caller.
    pub fn compile(&self, principal: &Principal) -> Filter {
        match self.fold(principal) {
            Folded::Known(true) => always(),
            Folded::Known(false) => never(),
            Folded::Filter(filter) => filter,
        }
    }

    /// Field paths the predicate reads.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Predicate::And(list) | Predicate::Or(list) => list.iter().for_each(|p| p.collect(out)),
            Predicate::Not(inner) => inner.collect(out),
            Predicate::Compare { left, right, .. } => {
                for term in [left, right] {
                    if let Term::Field(f) = term {
                        out.push(f.clone());
                    }
                }
            }
            Predicate::Const(_) => {}
        }
    }

    fn fold(&self, principal: &Principal) -> Folded {
        match self {
            Predicate::Const(b) => Folded::Known(*b),
            Predicate::Not(inner) => match inner.fold(principal) {
                Folded::Known(b) => Folded::Known(!b),
                Folded::Filter(f) => Folded::Filter(Filter::Not(Box::new(f))),
            },
            Predicate::And(list) | Predicate::Or(list) => {
                let is_and = matches!(self, Predicate::And(_));
                let mut parts = Vec::new();
                for item in list {
                    match item.fold(principal) {
                        // AND with false, OR with true: decided.
                        Folded::Known(b) if b != is_and => return Folded::Known(b),
                        Folded::Known(_) => {}
                        Folded::Filter(f) => parts.push(f),
                    }
                }
                match (parts.len(), is_and) {
                    (0, _) => Folded::Known(is_and),
                    (1, _) => Folded::Filter(parts.pop().expect("one part")),
                    (_, true) => Folded::Filter(Filter::And(parts)),
                    (_, false) => Folded::Filter(Filter::Or(parts)),
                }
            }
            Predicate::Compare { left, op, right } => compare(left, *op, right, principal),
        }
    }
}

enum Folded {
    Known(bool),
    Filter(Filter),
}

fn value_of(term: &Term, principal: &Principal) -> Option<Value> {
    match term {
        Term::Field(_) => None,
        Term::Literal(v) => Some(v.clone()),
        Term::Context(key) => Some(principal.context(key).unwrap_or(Value::Null)),
        Term::List(items) => items.iter().map(|t| value_of(t, principal)).collect::<Option<Vec<_>>>().map(Value::List),
    }
}

fn flip(op: Op) -> Op {
    match op {
        Op::Gt => Op::Lt,
        Op::Gte => Op::Lte,
        Op::Lt => Op::Gt,
        Op::Lte => Op::Gte,
        other => other,
    }
}

fn compare(left: &Term, op: Op, right: &Term, principal: &Principal) -> Folded {
    match (left, right) {
        (Term::Field(field), other) | (other, Term::Field(field)) if !matches!(other, Term::Field(_)) => {
            let op = if matches!(left, Term::Field(_)) { op } else { flip(op) };
            let value = value_of(other, principal).unwrap_or(Value::Null);
            // `field = null` reads as `field IS NULL`.
            let condition = match (op, &value) {
                (Op::Eq, Value::Null) => Condition { field: field.clone(), op: Op::Null, value: Operand::Value(Value::Bool(true)) },
                (Op::Ne, Value::Null) => Condition { field: field.clone(), op: Op::Null, value: Operand::Value(Value::Bool(false)) },
                // A list context value (roles) on the right of `=` means membership.
                (Op::Eq, Value::List(_)) => Condition { field: field.clone(), op: Op::In, value: Operand::Value(value) },
                (Op::Ne, Value::List(_)) => Condition { field: field.clone(), op: Op::Nin, value: Operand::Value(value) },
                _ => Condition { field: field.clone(), op, value: Operand::Value(value) },
            };
            Folded::Filter(Filter::Cond(condition))
        }
        (Term::Field(a), Term::Field(b)) => Folded::Filter(Filter::Cond(Condition { field: a.clone(), op, value: Operand::Field(b.clone()) })),
        _ => {
            let (a, b) = (value_of(left, principal).unwrap_or(Value::Null), value_of(right, principal).unwrap_or(Value::Null));
            Folded::Known(constant(&a, op, &b))
        }
    }
}

/// A comparison of two known values, with the read models' meaning (a list
/// on either side of `=` means membership).
fn constant(a: &Value, op: Op, b: &Value) -> bool {
    match (op, a, b) {
        (Op::Eq | Op::Ne, a, Value::List(_)) if !matches!(a, Value::List(_)) => crate::query::compare::test(op, b, a, None),
        _ => crate::query::compare::test(op, a, b, None),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    Symbol(&'static str),
}

fn tokenize(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a quoted text is not closed".into()),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        text.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Text(text));
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Number(text.parse().map_err(|_| format!("'{text}' is not a number"))?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match two.as_str() {
                "==" => Some("="),
                "!=" | "<>" => Some("<>"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                "&&" => Some("AND"),
                "||" => Some("OR"),
                _ => None,
            };
            if let Some(symbol) = symbol {
                out.push(Token::Symbol(symbol));
                i += 2;
                continue;
            }
            out.push(Token::Symbol(match c {
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                other => return Err(format!("unexpected character '{other}'")),
            }));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        let hit = match self.peek() {
            Some(Token::Word(w)) => w.eq_ignore_ascii_case(word),
            Some(Token::Symbol(s)) => *s == word,
            _ => false,
        };
        if hit {
            self.at += 1;
        }
        hit
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.at += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Predicate, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("OR") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.pop().expect("one") } else { Predicate::Or(parts) })
    }

    fn and(&mut self) -> Result<Predicate, String> {
        let mut parts = vec![self.unary()?];
        while self.keyword("AND") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 { parts.pop().expect("one") } else { Predicate::And(parts) })
    }

    fn unary(&mut self) -> Result<Predicate, String> {
        if self.keyword("NOT") {
            return Ok(Predicate::Not(Box::new(self.unary()?)));
        }
        if self.symbol("(") {
            let inner = self.or()?;
            if !self.symbol(")") {
                return Err("a '(' is not closed".into());
            }
            return Ok(inner);
        }
        let left = self.term()?;
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            if !self.keyword("NULL") {
                return Err("IS must be followed by NULL or NOT NULL".into());
            }
            return Ok(Predicate::Compare { left, op: Op::Null, right: Term::Literal(Value::Bool(!negated)) });
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if !self.symbol("(") {
                return Err("IN takes a list in parentheses".into());
            }
            let mut items = vec![self.term()?];
            while self.symbol(",") {
                items.push(self.term()?);
            }
            if !self.symbol(")") {
                return Err("an IN list is not closed".into());
            }
            return Ok(Predicate::Compare { left, op: if negated { Op::Nin } else { Op::In }, right: Term::List(items) });
        }
        if self.keyword("LIKE") {
            let right = self.term()?;
            let like = Predicate::Compare { left, op: Op::Like, right };
            return Ok(if negated { Predicate::Not(Box::new(like)) } else { like });
        }
        if negated {
            return Err("NOT here must be followed by IN or LIKE".into());
        }
        if let Term::Literal(Value::Bool(b)) = left {
            if !matches!(self.peek(), Some(Token::Symbol("=" | "<>" | "<" | "<=" | ">" | ">="))) {
                return Ok(Predicate::Const(b));
            }
        }
        let op = match self.peek() {
            Some(Token::Symbol("=")) => Op::Eq,
            Some(Token::Symbol("<>")) => Op::Ne,
            Some(Token::Symbol("<")) => Op::Lt,
            Some(Token::Symbol("<=")) => Op::Lte,
            Some(Token::Symbol(">")) => Op::Gt,
            Some(Token::Symbol(">=")) => Op::Gte,
            other => return Err(format!("expected a comparison, found {}", describe(other))),
        };
        self.at += 1;
        let right = self.term()?;
        Ok(Predicate::Compare { left, op, right })
    }

    fn term(&mut self) -> Result<Term, String> {
        let token = self.peek().cloned();
        self.at += 1;
        Ok(match token {
            Some(Token::Text(t)) => Term::Literal(Value::Text(t)),
            Some(Token::Number(n)) => Term::Literal(if n.fract() == 0.0 && n.abs() < 9.0e15 { Value::Int(n as i64) } else { Value::Float(n) }),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Term::Literal(Value::Bool(true)),
                "false" => Term::Literal(Value::Bool(false)),
                "null" => Term::Literal(Value::Null),
                _ => match w.strip_prefix("current_user.") {
                    Some(key) => {
                        let key = if key == "roles" { "role" } else { key };
                        if !CONTEXT_KEYS.contains(&key) {
                            return Err(format!("current_user.{key} is not known (known: {})", CONTEXT_KEYS.join(", ")));
                        }
                        Term::Context(key.to_string())
                    }
                    None => Term::Field(w),
                },
            },
            other => return Err(format!("expected a field or a value, found {}", describe(other.as_ref()))),
        })
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end".into(),
        Some(Token::Word(w)) => format!("'{w}'"),
        Some(Token::Text(t)) => format!("'{t}'"),
        Some(Token::Number(n)) => n.to_string(),
        Some(Token::Symbol(s)) => format!("'{s}'"),
    }
}

/// Parses a predicate; the error says what is wrong, for the app's author.
pub fn parse_predicate(source: &str) -> Result<Predicate, String> {
    let tokens = tokenize(source)?;
    if tokens.is_empty() {
        return Err("the predicate is empty".into());
    }
    let mut parser = Parser { tokens, at: 0 };
    let predicate = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!("unexpected {} after the predicate", describe(parser.peek())));
    }
    Ok(predicate)
}
