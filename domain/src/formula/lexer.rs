//! Tokens of the formula language.

use super::FormulaError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Number(f64),
    Text(String),
    Ident(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    End,
}

pub(crate) fn tokenize(source: &str) -> Result<Vec<(Token, usize)>, FormulaError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |message: String, offset: usize| FormulaError { message, offset };
    while i < chars.len() {
        let (offset, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|(_, d)| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().map(|(_, c)| c).collect();
            let number = text.parse::<f64>().map_err(|_| err(format!("bad number '{text}'"), offset))?;
            tokens.push((Token::Number(number), offset));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || matches!(chars[i].1, '_' | '.' | '$')) {
                i += 1;
            }
            let text: String = chars[start..i].iter().map(|(_, c)| c).collect();
            tokens.push((Token::Ident(text), offset));
            continue;
        }
        if c == '"' || c == '\'' {
            let quote = c;
            i += 1;
            let mut text = String::new();
            loop {
                let Some(&(_, ch)) = chars.get(i) else {
                    return Err(err("unterminated string".into(), offset));
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' {
                    let Some(&(_, escaped)) = chars.get(i) else {
                        return Err(err("unterminated string".into(), offset));
                    };
                    i += 1;
                    text.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    text.push(ch);
                }
            }
            tokens.push((Token::Text(text), offset));
            continue;
        }
        let next = chars.get(i + 1).map(|(_, c)| *c);
        let two = match (c, next) {
            ('<', Some('=')) => Some("<="),
            ('>', Some('=')) => Some(">="),
            ('!', Some('=')) => Some("!="),
            ('<', Some('>')) => Some("!="),
            ('=', Some('=')) => Some("="),
            ('&', Some('&')) => Some("AND"),
            ('|', Some('|')) => Some("OR"),
            _ => None,
        };
        if let Some(op) = two {
            tokens.push((Token::Op(op), offset));
            i += 2;
            continue;
        }
        let token = match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            '+' => Token::Op("+"),
            '-' => Token::Op("-"),
            '*' => Token::Op("*"),
            '/' => Token::Op("/"),
            '%' => Token::Op("%"),
            '&' => Token::Op("&"),
            '=' => Token::Op("="),
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            '!' => Token::Op("NOT"),
            other => return Err(err(format!("unexpected character '{other}'"), offset)),
        };
        tokens.push((token, offset));
        i += 1;
    }
    tokens.push((Token::End, source.len()));
    Ok(tokens)
}
