//! Recursive-descent parser from tokens to [`Expr`].

use super::lexer::{tokenize, Token};
use super::FormulaError;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// A field name, or a dotted path through a relation (`account.name`).
    Field(String),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The built-in functions. Names are case-insensitive in formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    IsBlank,
    IsNull,
    BlankValue,
    Not,
    And,
    Or,
    If,
    Concat,
    Len,
    Upper,
    Lower,
    Trim,
    Left,
    Right,
    Contains,
    Begins,
    Text,
    Number,
    Today,
    Now,
    Year,
    Month,
    Day,
    MonthDiff,
    DayDiff,
    AddDays,
    Abs,
    Round,
    Floor,
    Ceiling,
    Min,
    Max,
    Mod,
    IsChanged,
    PriorValue,
    IsNew,
    Regex,
}

impl Func {
    const ALL: &'static [(&'static str, Func, usize, Option<usize>)] = &[
        ("ISBLANK", Func::IsBlank, 1, Some(1)),
        ("ISNULL", Func::IsNull, 1, Some(1)),
        ("BLANKVALUE", Func::BlankValue, 2, Some(2)),
        ("NULLVALUE", Func::BlankValue, 2, Some(2)),
        ("NOT", Func::Not, 1, Some(1)),
        ("AND", Func::And, 1, None),
        ("OR", Func::Or, 1, None),
        ("IF", Func::If, 2, Some(3)),
        ("CONCAT", Func::Concat, 0, None),
        ("LEN", Func::Len, 1, Some(1)),
        ("UPPER", Func::Upper, 1, Some(1)),
        ("LOWER", Func::Lower, 1, Some(1)),
        ("TRIM", Func::Trim, 1, Some(1)),
        ("LEFT", Func::Left, 2, Some(2)),
        ("RIGHT", Func::Right, 2, Some(2)),
        ("CONTAINS", Func::Contains, 2, Some(2)),
        ("BEGINS", Func::Begins, 2, Some(2)),
        ("TEXT", Func::Text, 1, Some(1)),
        ("VALUE", Func::Number, 1, Some(1)),
        ("TODAY", Func::Today, 0, Some(0)),
        ("NOW", Func::Now, 0, Some(0)),
        ("YEAR", Func::Year, 1, Some(1)),
        ("MONTH", Func::Month, 1, Some(1)),
        ("DAY", Func::Day, 1, Some(1)),
        ("MONTH_DIFF", Func::MonthDiff, 2, Some(2)),
        ("DAY_DIFF", Func::DayDiff, 2, Some(2)),
        ("ADD_DAYS", Func::AddDays, 2, Some(2)),
        ("ABS", Func::Abs, 1, Some(1)),
        ("ROUND", Func::Round, 1, Some(2)),
        ("FLOOR", Func::Floor, 1, Some(1)),
        ("CEILING", Func::Ceiling, 1, Some(1)),
        ("MIN", Func::Min, 1, None),
        ("MAX", Func::Max, 1, None),
        ("MOD", Func::Mod, 2, Some(2)),
        ("ISCHANGED", Func::IsChanged, 1, None),
        ("PRIORVALUE", Func::PriorValue, 1, Some(1)),
        ("ISNEW", Func::IsNew, 0, Some(0)),
        ("REGEX", Func::Regex, 2, Some(2)),
    ];

    fn lookup(name: &str) -> Option<(Func, usize, Option<usize>)> {
        let upper = name.to_ascii_uppercase();
        Func::ALL.iter().find(|(n, ..)| *n == upper).map(|(_, f, min, max)| (*f, *min, *max))
    }
}

impl Expr {
    /// Every field path the expression reads, for load-time checks.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Field(name) => out.push(name.clone()),
            Expr::Unary(_, e) => e.collect_fields(out),
            Expr::Binary(_, a, b) => {
                a.collect_fields(out);
                b.collect_fields(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.collect_fields(out)),
        }
    }
}

/// Parses a formula. Unknown functions and wrong argument counts are errors.
pub fn parse(source: &str) -> Result<Expr, FormulaError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or()?;
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(parser.error(format!("unexpected {other:?}"))),
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos].0
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.pos].0.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn error(&self, message: String) -> FormulaError {
        FormulaError { message, offset: self.tokens[self.pos].1 }
    }

    fn keyword(&self, word: &str) -> bool {
        match self.peek() {
            Token::Ident(name) => name.eq_ignore_ascii_case(word) && !matches!(self.tokens.get(self.pos + 1).map(|t| &t.0), Some(Token::LParen)),
            Token::Op(op) => *op == word,
            _ => false,
        }
    }

    fn or(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.next();
            let right = self.and()?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            self.next();
            let right = self.not()?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, FormulaError> {
        if self.keyword("NOT") {
            self.next();
            let inner = self.not()?;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, FormulaError> {
        let left = self.concat()?;
        let op = match self.peek() {
            Token::Op("=") => BinaryOp::Eq,
            Token::Op("!=") => BinaryOp::Ne,
            Token::Op("<") => BinaryOp::Lt,
            Token::Op("<=") => BinaryOp::Le,
            Token::Op(">") => BinaryOp::Gt,
            Token::Op(">=") => BinaryOp::Ge,
            _ => return Ok(left),
        };
        self.next();
        let right = self.concat()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn concat(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.additive()?;
        while matches!(self.peek(), Token::Op("&")) {
            self.next();
            let right = self.additive()?;
            left = Expr::Binary(BinaryOp::Concat, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Token::Op("+") => BinaryOp::Add,
                Token::Op("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.next();
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Token::Op("*") => BinaryOp::Mul,
                Token::Op("/") => BinaryOp::Div,
                Token::Op("%") => BinaryOp::Mod,
                _ => return Ok(left),
            };
            self.next();
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        if matches!(self.peek(), Token::Op("-")) {
            self.next();
            let inner = self.unary()?;
            return Ok(Expr::Unary(UnaryOp::Neg, Box::new(inner)));
        }
        if matches!(self.peek(), Token::Op("NOT")) {
            self.next();
            let inner = self.unary()?;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        match self.next() {
            Token::Number(n) => Ok(Expr::Literal(if n.fract() == 0.0 && n.abs() < 9e15 { Value::Int(n as i64) } else { Value::Float(n) })),
            Token::Text(s) => Ok(Expr::Literal(Value::Text(s))),
            Token::LParen => {
                let inner = self.or()?;
                match self.next() {
                    Token::RParen => Ok(inner),
                    _ => Err(self.error("expected ')'".into())),
                }
            }
            Token::Ident(name) => {
                if matches!(self.peek(), Token::LParen) {
                    self.next();
                    return self.call(name);
                }
                match name.to_ascii_uppercase().as_str() {
                    "TRUE" => Ok(Expr::Literal(Value::Bool(true))),
                    "FALSE" => Ok(Expr::Literal(Value::Bool(false))),
                    "NULL" => Ok(Expr::Literal(Value::Null)),
                    _ => Ok(Expr::Field(name)),
                }
            }
            other => Err(self.error(format!("unexpected {other:?}"))),
        }
    }

    fn call(&mut self, name: String) -> Result<Expr, FormulaError> {
        let Some((func, min, max)) = Func::lookup(&name) else {
            return Err(self.error(format!("unknown function {name}")));
        };
        let mut args = Vec::new();
        if !matches!(self.peek(), Token::RParen) {
            loop {
                args.push(self.or()?);
                match self.next() {
                    Token::Comma => continue,
                    Token::RParen => break,
                    _ => return Err(self.error(format!("expected ',' or ')' in {name}"))),
                }
            }
        } else {
            self.next();
        }
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            return Err(self.error(format!("{name} takes {min}..{} arguments, got {}", max.map_or("n".to_string(), |m| m.to_string()), args.len())));
        }
        if func == Func::IsChanged || func == Func::PriorValue {
            if let Some(bad) = args.iter().find(|a| !matches!(a, Expr::Field(_))) {
                return Err(self.error(format!("{name} takes field names, got {bad:?}")));
            }
        }
        Ok(Expr::Call(func, args))
    }
}
