import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsIn, IsString, Length, Matches } from 'class-validator';

export const ROLES = ['admin', 'member'] as const;
export type MemberRole = (typeof ROLES)[number];

/**
 * Control, format (zero-width, soft hyphen, bidi overrides) and space characters: none belongs in
 * an email address, and each would make a second user who reads as an existing one.
 */
const INVISIBLE = '\\p{Cc}\\p{Cf}\\p{Z}';
/**
 * Those, or a combining mark left on a Latin letter once composed and lower-cased (`İ` lower-cases to
 * `i` and a combining dot): it reads as the plain letter.
 */
const LOOK_ALIKE = `[${INVISIBLE}]|[A-Za-z]\\p{M}`;
export const EMAIL_INVISIBLE = new RegExp(LOOK_ALIKE, 'u');
export const EMAIL_INVISIBLE_MESSAGE =
  'email must not contain invisible, control or space characters, nor a combining mark on a Latin letter';

/** An email as it is stored and looked up: trimmed, composed (NFC), lower case. */
export function normalizeEmail(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}

const trimmed = Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));

export class AddMemberDto {
  @ApiProperty({ example: 'bob@acme.test', description: 'An existing user with this email is added as they are' })
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? normalizeEmail(value) : value))
  @IsString({ message: 'email must be an email address' })
  @Matches(new RegExp(`^(?!.*(?:${LOOK_ALIKE}))`, 'su'), { message: EMAIL_INVISIBLE_MESSAGE })
  @Length(3, 320, { message: 'email must be an email address of at most 320 characters' })
  @IsEmail({}, { message: 'email must be an email address' })
  email!: string;

  @ApiProperty({ example: 'Bob Chen', description: "The new user's name (ignored for an existing user)" })
  @trimmed
  @IsString({ message: 'name must be 1 to 200 characters long after trimming' })
  @Length(1, 200, { message: 'name must be 1 to 200 characters long after trimming' })
  name!: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES, { message: 'role must be admin or member' })
  role!: MemberRole;
}

export class ChangeRoleDto {
  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES, { message: 'role must be admin or member' })
  role!: MemberRole;
}

export class CreateTokenDto {
  @ApiProperty({ example: 'CI pipeline', description: 'What the token is for: 1 to 200 characters' })
  @trimmed
  @IsString({ message: 'label must be 1 to 200 characters long after trimming' })
  @Length(1, 200, { message: 'label must be 1 to 200 characters long after trimming' })
  label!: string;
}
