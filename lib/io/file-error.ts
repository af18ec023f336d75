// An error about one file: the message starts with the file's path, and `file` holds it.
export class FileError extends Error {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = new.target.name;
    this.file = file;
  }
}
